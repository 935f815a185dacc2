"""Every figure of the book, one named function per figure kind.

Functions take a matplotlib `Axes` where a figure is one panel, and return the `Figure`
where they make a whole figure, so a notebook cell is one call.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from .data import NOISE_LEVEL
from .geometry import box_corners, heading_vectors, rotated_iou
from .pixel_statistics import (
    PIXEL_CLASSES,
    likelihood_ratio,
    noise_pixel_density,
    ship_pixel_density,
)
from .preprocessing import THRESHOLD
from .validation import check_boxes, check_images, has_box

TRUE_COLOUR = "tab:red"
PREDICTED_COLOUR = "tab:cyan"


FIGURE_FORMAT = ("jpeg", {"pil_kwargs": {"quality": 75}})
"""How notebooks embed figures: JPEG, because panels of uniform noise do not compress as
PNG (a gallery of eight images is about 1 MB as PNG and well under 300 KB as JPEG)."""


def use_book_style() -> None:
    """Matplotlib defaults for the book: readable fonts, screen DPI, no top/right spines.

    In a notebook, figures are also embedded as JPEG (`FIGURE_FORMAT`) to keep pages light.
    """
    if "matplotlib_inline" in sys.modules and "IPython" in sys.modules:
        from IPython import get_ipython

        if get_ipython() is not None:
            backend_inline = sys.modules["matplotlib_inline"].backend_inline
            backend_inline.set_matplotlib_formats(FIGURE_FORMAT[0], **FIGURE_FORMAT[1])
    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "font.size": 10,
            "axes.titlesize": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "image.cmap": "gray",
        }
    )


def draw_box(
    ax: plt.Axes, box: np.ndarray, colour: str, label: str | None = None, show_nose: bool = True
) -> None:
    """Outline one (x, y, yaw, width, height) box on `ax`; an arrow marks the nose. NaN: nothing."""
    box = check_boxes(box, "box")[0]
    if np.isnan(box).any():
        return
    draw_polygon(ax, box_corners(box[None])[0], color=colour, linewidth=1.2, label=label)
    if show_nose:
        dx, dy = heading_vectors(box[2:3])[0] * box[4] / 2
        ax.annotate(
            "",
            xy=(box[0] + dx, box[1] + dy),
            xytext=(box[0], box[1]),
            arrowprops={"arrowstyle": "->", "color": colour, "linewidth": 1.2},
        )


def draw_polygon(ax: plt.Axes, points: np.ndarray, *fmt: str, **style) -> None:
    """Draw the closed polygon through points (P, 2) (x, y) on `ax`: `ax.plot`'s format
    string and style, the last point joined back to the first."""
    points = np.asarray(points, dtype=np.float64)
    closed = np.vstack([points, points[:1]])
    ax.plot(closed[:, 0], closed[:, 1], *fmt, **style)


IMAGE_STYLE = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0}
"""How `imshow` shows a raw image: grey, from 0 to 1."""
LOG_RATIO_STYLE = {"cmap": "RdBu_r", "vmin": -4.3, "vmax": 4.3}
"""How `imshow` shows the outline log ratios (`outline_fit.log_ratio_maps`): red for
bright pixels (up to 4.3, above the noise), blue for dark ones."""


def plot_sample(
    ax: plt.Axes,
    image: np.ndarray,
    true_box: np.ndarray | None = None,
    predicted_box: np.ndarray | None = None,
    title: str | None = None,
    show_nose: bool = True,
) -> None:
    """An image (200, 200) in grey with its true box (red) and a predicted box (cyan)."""
    image = check_images(image, "image")[0]
    ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    if true_box is not None:
        draw_box(ax, true_box, TRUE_COLOUR, "true", show_nose)
    if predicted_box is not None:
        draw_box(ax, predicted_box, PREDICTED_COLOUR, "predicted", show_nose)
    ax.set_xlim(-0.5, image.shape[1] - 0.5)
    ax.set_ylim(image.shape[0] - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)


def plot_sample_grid(
    images: np.ndarray,
    true_boxes: np.ndarray | None = None,
    predicted_boxes: np.ndarray | None = None,
    titles: Sequence[str] | None = None,
    columns: int = 4,
    panel_size: float = 2.6,
) -> plt.Figure:
    """A grid of samples: images (N, 200, 200), optional (N, 5) true and predicted boxes."""
    images = check_images(images)
    count = len(images)
    rows = max(1, int(np.ceil(count / columns)))
    fig, axes = plt.subplots(
        rows, columns, figsize=(panel_size * columns, panel_size * rows), squeeze=False
    )
    for index, ax in enumerate(axes.flat):
        if index >= count:
            ax.axis("off")
            continue
        plot_sample(
            ax,
            images[index],
            None if true_boxes is None else true_boxes[index],
            None if predicted_boxes is None else predicted_boxes[index],
            None if titles is None else titles[index],
        )
    fig.tight_layout()
    return fig


def plot_iou_histogram(
    ious: Mapping[str, np.ndarray] | np.ndarray, threshold: float = 0.7, bins: int = 40
) -> plt.Figure:
    """Histogram of per-sample IoU (true negatives, NaN, left out), one series per model."""
    series = ious if isinstance(ious, Mapping) else {"model": ious}
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    edges = np.linspace(0, 1, bins + 1)
    for name, values in series.items():
        values = np.asarray(values, dtype=np.float64)
        values = values[~np.isnan(values)]
        ax.hist(
            values,
            bins=edges,
            histtype="stepfilled",
            alpha=0.45,
            label=f"{name} (n = {values.size:,})",
        )
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
    ax.text(threshold, ax.get_ylim()[1] * 0.95, f" IoU = {threshold}", va="top")
    ax.set_xlabel("IoU with the true box (misses count 0)")
    ax.set_ylabel("samples")
    # Upper left, but right of the bar at IoU 0 (the misses), clear of the threshold's label.
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(0.08, 1.0))
    fig.tight_layout()
    return fig


def plot_training_history(
    history: Mapping[str, Sequence[float]],
    metrics: Sequence[str] = ("loss",),
    x_axis: str = "epoch",
    x_label: str | None = None,
) -> plt.Figure:
    """Training and validation curves, one panel per metric, against epochs or images.

    `x_axis` is 'epoch' (or any per-row count, named by `x_label`) or 'images' (thousands of
    training images, from the history's `images` column). Losses are drawn on a log scale;
    `val_<metric>` entries become the validation curve.
    """
    if x_axis not in ("epoch", "images"):
        raise ValueError(f"x_axis must be 'epoch' or 'images', got {x_axis!r}")
    if x_axis == "images" and "images" not in history:
        raise ValueError("x_axis='images' needs an 'images' column in the history")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=True):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if key in history:
                values = np.asarray(history[key], dtype=np.float64)
                if x_axis == "images":
                    x = np.asarray(history["images"], dtype=np.float64) / 1e3
                else:
                    x = np.arange(1, values.size + 1)
                ax.plot(
                    x,
                    values,
                    style,
                    marker="o" if values.size <= 40 else None,
                    markersize=3,
                    label="validation" if key.startswith("val_") else "training",
                )
        default_label = "training images (thousands)" if x_axis == "images" else "epoch"
        ax.set_xlabel(x_label or default_label)
        ax.set_ylabel(metric)
        if "loss" in metric:
            ax.set_yscale("log")
        ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def plot_score_by_group(
    splits: Mapping[str, Sequence[Mapping]], threshold: float = 0.7
) -> plt.Figure:
    """Bar charts of the challenge score per group, one panel per split.

    `splits` maps a split name to rows of `evaluate.score_by_group` (group, samples, score).
    """
    fig, axes = plt.subplots(1, len(splits), figsize=(4.2 * len(splits), 3.4), squeeze=False)
    for ax, (name, rows) in zip(axes.flat, splits.items(), strict=True):
        rows = [row for row in rows if row["group"] != "no ship"]
        positions = np.arange(len(rows))
        ax.bar(positions, [row["score"] for row in rows], color="tab:blue", alpha=0.8)
        for position, row in zip(positions, rows, strict=True):
            ax.text(position, row["score"] + 0.01, f"n={row['samples']}", ha="center", fontsize=8)
        ax.set_xticks(positions, [row["group"] for row in rows], rotation=25, ha="right")
        ax.set_ylim(0, None)
        ax.set_ylabel(f"share with IoU > {threshold}")
        ax.set_title(f"by {name}")
    fig.tight_layout()
    return fig


def plot_gallery(
    images: Sequence[np.ndarray],
    true_boxes: Sequence[np.ndarray],
    predicted_boxes: Sequence[np.ndarray],
    ious: Sequence[float],
    title: str,
    columns: int = 4,
) -> plt.Figure:
    """A titled grid of evaluated samples with their IoU; says so when there are none."""
    if len(images) == 0:
        fig, ax = plt.subplots(figsize=(6.4, 0.8))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{title}: no sample fell in this range", ha="center", va="center")
        return fig
    fig = plot_sample_grid(
        np.stack(images),
        np.stack(true_boxes),
        np.stack(predicted_boxes),
        titles=[f"IoU {iou:.2f}" for iou in ious],
        columns=columns,
    )
    fig.suptitle(title, y=1.02)
    return fig


# --- Chapters 1-3: data and preprocessing figures ---------------------------------------

# Figures of chapters 1-3. They take arrays (or the `pixel_statistics.ThresholdSweep` they
# are drawn from) and compute nothing but what a picture needs; the numbers come from
# `label_statistics`, `pixel_statistics` and `label_losses`.

THRESHOLD_COLOUR = "tab:orange"
PI_TICKS = (np.pi * np.arange(5) / 2, ["0", "pi/2", "pi", "3pi/2", "2pi"])
CLASS_COLOURS = {"ship": "tab:red", "line": "tab:blue", "noise": "tab:gray"}
ENCODING_STYLES = {
    "raw": ("yaw / 2 pi (the seed)", "tab:purple"),
    "sincos": ("sin, cos of yaw", "tab:green"),
    "sincos2": ("sin, cos of 2 yaw", "tab:orange"),
}


def plot_layer_breakdown(
    noise: np.ndarray, lines: np.ndarray, ship: np.ndarray, label: np.ndarray
) -> plt.Figure:
    """The three layers of one sample (each (200, 200)) and their pixel-wise maximum, boxed."""
    image = np.maximum(np.maximum(noise, lines), ship)
    panels = (
        (noise, None, "background noise"),
        (lines, None, "noise lines"),
        (ship, label, "ship outline (true box in red)"),
        (image, label, "the image: pixel-wise max"),
    )
    fig, axes = plt.subplots(1, 4, figsize=(10.4, 3.0))
    for ax, (layer, box, title) in zip(axes, panels, strict=True):
        plot_sample(ax, layer, box, title=title)
        _show_pixel_ticks(ax)
        ax.set_xlabel("x (column, px)")
    axes[0].set_ylabel("y (row, px)")
    fig.tight_layout()
    return fig


def _show_pixel_ticks(ax: plt.Axes) -> None:
    """Put pixel coordinates back on an image panel (`plot_sample` hides them)."""
    ax.xaxis.set_major_locator(plt.MaxNLocator(4, integer=True))
    ax.yaxis.set_major_locator(plt.MaxNLocator(4, integer=True))


def plot_label_histograms(
    labels: np.ndarray,
    bounds: Sequence[tuple[float, float]] | None = None,
    units: Sequence[str] = ("px", "px", "rad", "px", "px"),
    names: Sequence[str] = ("x", "y", "yaw", "width", "height"),
) -> plt.Figure:
    """Histograms of the five label columns of (N, 5) labels, and the ship / no-ship split.

    `bounds` (five (low, high) pairs) are drawn as dashed lines: the generator's ranges.
    Whole-number columns get one bin per run of integers, so no bin is half empty.
    """
    boxes = check_boxes(labels, "labels")
    has_ship = has_box(boxes)
    ships = boxes[has_ship]
    fig, axes = plt.subplots(2, 3, figsize=(10.0, 5.6))
    for column, ax in enumerate(axes.flat[:5]):
        values = ships[:, column]
        ax.hist(values, bins=_histogram_edges(values), color="tab:blue", alpha=0.75)
        if bounds is not None:
            for bound in bounds[column]:
                ax.axvline(bound, color="black", linestyle="--", linewidth=1)
        ax.set_xlabel(f"{names[column]} ({units[column]})")
        ax.set_ylabel("ships")
    shares = np.array([has_ship.mean(), 1 - has_ship.mean()])
    bars = axes.flat[5].bar(["ship", "no ship"], 100 * shares, color=["tab:red", "tab:gray"])
    axes.flat[5].bar_label(bars, fmt="%.1f%%")
    axes.flat[5].set_ylabel(f"images (%) of {len(boxes):,}")
    axes.flat[5].set_ylim(0, 100)
    fig.tight_layout()
    return fig


def _histogram_edges(values: np.ndarray, target_bins: int = 36) -> np.ndarray:
    """Bin edges. Values on a regular grid (whole pixels, or whole pixels / 37) get bins that
    hold the same number of grid points each; other data `target_bins` equal bins."""
    low, high = float(np.min(values)), float(np.max(values))
    if high == low:
        return np.array([low - 0.5, low + 0.5])
    grid = np.unique(values)
    spacing = float(np.min(np.diff(grid)))
    points = (grid - low) / spacing
    if np.allclose(points, np.round(points), atol=1e-3) and points[-1] < 100 * target_bins:
        per_bin = max(1, int(np.ceil((points[-1] + 1) / target_bins)))
        return low - spacing / 2 + spacing * per_bin * np.arange(int(points[-1] / per_bin) + 2)
    return np.linspace(low, high, target_bins + 1)


def plot_yaw_twins(image: np.ndarray, box: np.ndarray, margin_px: float = 8.0) -> plt.Figure:
    """One ship drawn twice, zoomed in: with its box at yaw and at yaw + pi (arrows = nose)."""
    box = check_boxes(box, "box")[0]
    twin = box.copy()
    twin[2] = np.mod(box[2] + np.pi, 2 * np.pi)
    corners = box_corners(box[None])[0]
    low = corners.min(axis=0) - margin_px
    high = corners.max(axis=0) + margin_px
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.4))
    for ax, shown, name in ((axes[0], box, "yaw"), (axes[1], twin, "yaw + pi")):
        plot_sample(ax, image, shown, title=f"{name} = {shown[2]:.2f} rad")
        ax.set_xlim(low[0], high[0])
        ax.set_ylim(high[1], low[1])
        _show_pixel_ticks(ax)
        ax.set_xlabel("x (px)")
        ax.set_ylabel("y (px)")
    fig.tight_layout()
    return fig


def plot_threshold_comparison(
    images: np.ndarray,
    thresholded: np.ndarray,
    boxes: np.ndarray,
    threshold: float,
    outlines: np.ndarray | None = None,
    margin_px: float = 10.0,
) -> plt.Figure:
    """Raw and thresholded images side by side (true box in red), then zoomed on the ship:
    the outline alone (if `outlines` is given, else the raw image) and the thresholded image.

    images, thresholded and outlines (N, 200, 200); boxes (N, 5) with a ship in every row.
    """
    images = check_images(images)
    thresholded = check_images(thresholded, "thresholded")
    boxes = check_boxes(boxes, "boxes")
    references = images if outlines is None else check_images(outlines, "outlines")
    fig, axes = plt.subplots(len(images), 4, figsize=(9.6, 2.5 * len(images)), squeeze=False)
    titles = (
        "raw",
        f"thresholded (>= {threshold})",
        "raw, zoomed" if outlines is None else "outline alone, zoomed",
        "thresholded, zoomed",
    )
    for row, box in enumerate(boxes):
        corners = box_corners(box[None])[0]
        low = np.clip(corners.min(axis=0) - margin_px, -0.5, images.shape[2] - 0.5)
        high = np.clip(corners.max(axis=0) + margin_px, -0.5, images.shape[1] - 0.5)
        pictures = (images[row], thresholded[row], references[row], thresholded[row])
        for column, (ax, picture) in enumerate(zip(axes[row], pictures, strict=True)):
            zoomed = column >= 2
            title = titles[column] if row == 0 else None
            plot_sample(ax, picture, None if zoomed else box, title=title)
            if zoomed:
                ax.set_xlim(low[0], high[0])
                ax.set_ylim(high[1], low[1])
        axes[row, 0].set_ylabel(f"sample {row + 1}")
    fig.tight_layout()
    return fig


def plot_threshold_sweep(sweep, highlight: float | None = THRESHOLD) -> plt.Figure:
    """Three panels against the threshold: share of pixels kept per class, ship pixels kept
    per image, and the per-image outline SNR (medians with the middle half shaded).

    `sweep` is a `pixel_statistics.ThresholdSweep`; `highlight` marks a threshold (default:
    the seed's, `preprocessing.THRESHOLD`).
    """
    thresholds = sweep.thresholds
    classes = PIXEL_CLASSES
    fig, axes = plt.subplots(1, 3, figsize=(11.0, 3.4))
    shares = 100 * sweep.kept_share()
    for code, name in enumerate(classes):
        style = "--" if name == "line" else "-"
        axes[0].plot(
            thresholds,
            shares[:, code],
            style,
            marker="o",
            markersize=3,
            color=CLASS_COLOURS[name],
            label=f"{name} pixels",
        )
    axes[0].set_ylabel("pixels kept (%)")
    axes[0].legend(frameon=False)
    per_image = (
        (axes[1], sweep.kept_counts[:, :, 0], "ship pixels kept per image"),
        (axes[2], sweep.outline_snr, "outline SNR per image"),
    )
    for ax, values, ylabel in per_image:
        quartiles = np.nanpercentile(values, [25, 50, 75], axis=0)
        ax.fill_between(
            thresholds,
            quartiles[0],
            quartiles[2],
            color="tab:red",
            alpha=0.2,
            label="middle half of images",
        )
        ax.plot(thresholds, quartiles[1], marker="o", markersize=3, color="tab:red", label="median")
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
    axes[1].legend(frameon=False, loc="upper right")
    axes[2].legend(frameon=False, loc="upper left")
    for ax in axes:
        ax.set_xlabel("threshold")
        if highlight is not None:
            ax.axvline(highlight, color=THRESHOLD_COLOUR, linestyle=":", linewidth=1.5)
    fig.tight_layout()
    return fig


def plot_pixel_value_densities(sweep, noise_level: float = NOISE_LEVEL) -> plt.Figure:
    """Left: derived densities of a noise pixel and an outline pixel, over the measured
    histograms in `sweep` (a `pixel_statistics.ThresholdSweep`). Right: their likelihood ratio.
    """
    grid = np.linspace(0, 1, 1001)
    edges = sweep.bin_edges
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 3.6))
    for code, name, density in ((2, "noise", noise_pixel_density), (0, "ship", ship_pixel_density)):
        counts = sweep.value_counts[code]
        measured = counts / (counts.sum() * np.diff(edges))
        colour = CLASS_COLOURS[name]
        axes[0].stairs(
            measured, edges, color=colour, alpha=0.35, fill=True, label=f"{name} pixels, measured"
        )
        axes[0].plot(
            grid, density(grid, noise_level), color=colour, label=f"{name} pixels, derived"
        )
    axes[0].set_ylabel("probability density")
    axes[0].legend(frameon=False, loc="upper left")

    ratio = likelihood_ratio(grid, noise_level)
    finite = np.isfinite(ratio)
    axes[1].plot(grid[finite], ratio[finite], color="black", label="ship density / noise density")
    axes[1].axhline(1, color="gray", linewidth=1)
    # Below the noise level the ratio is 2v whatever the level, so it passes 1 at v = 0.5.
    evidence = (grid >= 0.5) & (grid < noise_level)
    axes[1].fill_between(
        grid[evidence],
        0,
        ratio[evidence],
        color="tab:red",
        alpha=0.25,
        label="favours ship, yet thresholded away",
    )
    axes[1].axvspan(
        noise_level,
        1,
        color=THRESHOLD_COLOUR,
        alpha=0.15,
        label="noise never reaches: ratio infinite",
    )
    axes[1].set_ylabel("likelihood ratio")
    axes[1].set_ylim(0, 2.2)
    axes[1].legend(frameon=False, loc="upper left")
    for ax in axes:
        ax.set_xlabel("pixel value")
        ax.set_xlim(0, 1)
        ax.axvline(noise_level, color=THRESHOLD_COLOUR, linestyle=":", linewidth=1.5)
    fig.tight_layout()
    return fig


def plot_component_shares(
    loss_shares: Mapping[str, np.ndarray],
    gradient_shares: Mapping[str, np.ndarray],
    names: Sequence[str] = ("x", "y", "yaw", "width", "height"),
) -> plt.Figure:
    """Grouped bars: each label column's share of the MSE (left) and of the mean |gradient|
    (right), one bar colour per labelling scheme (the keys, e.g. 'raw', 'seed scale')."""
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 3.6), sharey=True)
    positions = np.arange(len(names))
    for ax, shares, ylabel in (
        (axes[0], loss_shares, "share of the MSE (%)"),
        (axes[1], gradient_shares, "share of mean |gradient| (%)"),
    ):
        width = 0.8 / len(shares)
        for offset, (scheme, values) in enumerate(shares.items()):
            ax.bar(
                positions + (offset - (len(shares) - 1) / 2) * width,
                100 * np.asarray(values),
                width,
                label=scheme,
            )
        ax.set_xticks(positions, names)
        ax.set_xlabel("label column")
        ax.set_ylabel(ylabel)
        ax.yaxis.set_tick_params(labelleft=True)
    axes[0].legend(frameon=False)
    fig.tight_layout()
    return fig


def plot_yaw_codes(yaw_rad: np.ndarray, codes: Mapping[str, np.ndarray]) -> plt.Figure:
    """What each yaw encoding feeds the network: codes (K, 1) or (K, 2) against yaw (K,)."""
    fig, axes = plt.subplots(
        1, len(codes), figsize=(3.5 * len(codes), 3.0), sharey=True, squeeze=False
    )
    for ax, (encoding, values) in zip(axes[0], codes.items(), strict=True):
        values = np.asarray(values).reshape(len(yaw_rad), -1)
        title, colour = ENCODING_STYLES.get(encoding, (encoding, "black"))
        for column, linestyle in zip(range(values.shape[1]), ("-", "--"), strict=False):
            part = ("sin", "cos")[column] if values.shape[1] == 2 else "code"
            ax.plot(yaw_rad, values[:, column], linestyle, color=colour, label=part)
        ax.set_title(title)
        ax.set_xlabel("yaw (rad)")
        ax.set_xticks(*PI_TICKS)
        ax.set_ylim(-1.15, 1.7)
        ax.legend(frameon=False, loc="upper center", ncol=2)
        ax.yaxis.set_tick_params(labelleft=True)
    axes[0, 0].set_ylabel("code value")
    fig.tight_layout()
    return fig


def plot_yaw_losses(
    yaw_pred_rad: np.ndarray,
    losses: Mapping[str, np.ndarray],
    one_minus_iou: np.ndarray,
    yaw_true_rad: float,
) -> plt.Figure:
    """Left: each yaw encoding's loss, relative to its largest value, as the prediction sweeps
    the circle (true yaw dotted, yaw + pi faint). Right: what the score sees, 1 - IoU of the
    predicted and the true box."""
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 3.8), sharex=True)
    for encoding, values in losses.items():
        title, colour = ENCODING_STYLES.get(encoding, (encoding, "black"))
        axes[0].plot(yaw_pred_rad, values, color=colour, label=title)
    axes[0].set_ylabel("yaw loss / its largest value")
    axes[1].plot(yaw_pred_rad, one_minus_iou, color="black", label="1 - IoU (the score's view)")
    axes[1].set_ylabel("1 - IoU with the true box")
    for ax in axes:
        ax.axvline(yaw_true_rad, color="tab:red", linestyle=":", linewidth=1.5)
        ax.axvline(
            np.mod(yaw_true_rad + np.pi, 2 * np.pi),
            color="tab:red",
            linestyle=":",
            linewidth=1,
            alpha=0.5,
        )
        ax.set_xlabel("predicted yaw (rad)")
        ax.set_xticks(*PI_TICKS)
    handles = [
        line for ax in axes for line in ax.get_lines() if not line.get_label().startswith("_")
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


# --- Chapter 7: the detector ---------------------------------------------------------------


def plot_detector_targets(
    image: np.ndarray, label: np.ndarray, heatmap: np.ndarray, decoded_box: np.ndarray
) -> plt.Figure:
    """Left: image (200, 200) and its true box. Right: the heatmap target (G, G) on the
    stride grid with the box decoded from the targets, in image pixels."""
    image = check_images(image, "image")[0]
    heatmap = np.asarray(heatmap, dtype=np.float64)
    if heatmap.ndim != 2 or heatmap.shape[0] != heatmap.shape[1]:
        raise ValueError(f"heatmap must be a square 2-D grid, got shape {heatmap.shape}")
    size = image.shape[0]
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.6, 3.8))
    plot_sample(left, image, true_box=label, title="image and true box")
    shown = right.imshow(heatmap, cmap="magma", vmin=0, vmax=1, extent=(0, size, size, 0))
    draw_box(right, decoded_box, PREDICTED_COLOUR, "decoded from the targets")
    right.set_title(f"heatmap target ({heatmap.shape[0]}x{heatmap.shape[1]} cells)")
    right.set_xlabel("x (px)")
    right.set_ylabel("y (px)")
    right.legend(loc="lower right", fontsize=8, frameon=False, labelcolor="white")
    fig.colorbar(shown, ax=right, fraction=0.046, pad=0.04, label="target")
    fig.tight_layout()
    return fig


def plot_run_comparison(
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    metric: str,
    label: str | None = None,
    by_time: bool = True,
) -> plt.Figure:
    """One validation curve per run, against training images and (`by_time`) minutes.

    `histories` maps a run's name to its history (`runs.read_history`), which must hold
    `metric`, `images` and, for `by_time`, `seconds`. The first run is drawn thickest: the
    reference.
    """
    columns = (("images", 1e3), ("seconds", 60.0)) if by_time else (("images", 1e3),)
    fig, axes = plt.subplots(
        1, len(columns), figsize=(4.5 * len(columns), 3.4), sharey=True, squeeze=False
    )
    axes = axes[0]
    for index, (name, history) in enumerate(histories.items()):
        missing = {metric, *(column for column, _ in columns)} - set(history)
        if missing:
            raise ValueError(f"the history of {name!r} lacks {sorted(missing)}")
        values = np.asarray(history[metric], dtype=np.float64)
        for ax, (column, scale) in zip(axes, columns, strict=True):
            x = np.asarray(history[column], dtype=np.float64) / scale
            ax.plot(
                x,
                values,
                marker="o",
                markersize=3,
                linewidth=2.4 if index == 0 else 1.3,
                label=name,
            )
    axes[0].set_xlabel("training images (thousands)")
    if by_time:
        axes[1].set_xlabel("training time (minutes)")
    axes[0].set_ylabel(label or metric)
    axes[-1].legend(frameon=False)
    fig.tight_layout()
    return fig


def plot_overlap_construction(
    box_a: np.ndarray,
    box_b: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    real: np.ndarray,
    iou: float,
) -> plt.Figure:
    """Two boxes (5,) and how their overlap is built: `rotated_iou_loss.overlap_corner_candidates`
    for the pair, (24,) x, y and flags, with the first 8 points the corners and the last 16
    the edge crossings. Real corners and crossings are marked, the overlap polygon filled."""
    xs, ys, real = (np.asarray(values).reshape(-1) for values in (xs, ys, real))
    if not xs.shape == ys.shape == real.shape == (24,):
        raise ValueError(f"xs, ys and real must hold 24 candidates each, got {xs.shape}")
    real = real.astype(bool)
    fig, ax = plt.subplots(figsize=(6.4, 3.8), layout="constrained")
    draw_box(ax, box_a, TRUE_COLOUR, "box A", show_nose=False)
    draw_box(ax, box_b, PREDICTED_COLOUR, "box B", show_nose=False)
    corner = real.copy()
    corner[8:] = False
    crossing = real.copy()
    crossing[:8] = False
    if real.any():
        px, py = xs[real], ys[real]
        order = np.argsort(np.arctan2(py - py.mean(), px - px.mean()))
        ax.fill(px[order], py[order], color="0.8", zorder=0, label=f"overlap (IoU {iou:.3f})")
    ax.plot(xs[corner], ys[corner], "o", color="k", markersize=5, label="corner inside the other")
    ax.plot(xs[crossing], ys[crossing], "x", color="k", markersize=7, label="edges crossing")
    ax.set_aspect("equal")
    ax.invert_yaxis()  # image coordinates: y grows downwards
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")
    fig.legend(loc="outside right upper", fontsize=8, frameon=False)
    return fig


def plot_refinements(
    windows: np.ndarray,
    targets: np.ndarray,
    corrections: np.ndarray,
    unchanged: np.ndarray | None,
    columns: int = 4,
    channel: int = 0,
) -> plt.Figure:
    """What the refiner sees and does: each window (K, S, S, 2; one channel shown) with the
    proposal it was cut around (dashed), the true box (red) and the refined box (cyan).

    `targets` (K, 6) from `refiner.refinement_targets`, `corrections` (K, 6) the refiner's
    outputs, `unchanged` (K, 6) `refiner.unchanged_corrections` of the proposals. Titles
    give the IoU with the truth before and after. With `unchanged=None` no proposal is
    drawn and titles give the IoU of the cyan box alone. `channel` 0 shows the raw window,
    1 its thresholded copy.
    """
    windows = np.asarray(windows)
    count, size = len(windows), windows.shape[1]
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.8 * rows), squeeze=False)

    from .refiner import window_frame_boxes  # here: the refiner module imports Keras

    def in_pixels(values: np.ndarray) -> np.ndarray:
        """Refiner outputs or targets (K, 6) -> boxes in the window's pixels (K, 5)."""
        boxes = window_frame_boxes(values)
        return np.column_stack(
            [(boxes[:, :2] + 0.5) * size - 0.5, boxes[:, 2], boxes[:, 3:] * size]
        )

    truth, refined = in_pixels(targets), in_pixels(corrections)
    after = rotated_iou(refined, truth)
    proposals = None if unchanged is None else in_pixels(unchanged)
    before = None if proposals is None else rotated_iou(proposals, truth)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= count:
            continue
        ax.imshow(windows[index, ..., channel], cmap="gray", vmin=0, vmax=1)
        title = f"IoU {after[index]:.2f}"
        if proposals is not None:
            corners = box_corners(proposals[index : index + 1])[0]
            draw_polygon(ax, corners, "--", color="0.85", linewidth=1.0)
            title = f"IoU {before[index]:.2f} -> {after[index]:.2f}"
        draw_box(ax, truth[index], TRUE_COLOUR, show_nose=False)
        draw_box(ax, refined[index], PREDICTED_COLOUR, show_nose=False)
        ax.set_title(title, fontsize=9)
        ax.set_xlim(-0.5, size - 0.5)  # a box reaching out of the window is cut at its edge
        ax.set_ylim(size - 0.5, -0.5)
    fig.tight_layout()
    return fig


def plot_boxes_around_truth(
    images: np.ndarray, labels: np.ndarray, boxes: np.ndarray, columns: int = 6
) -> plt.Figure:
    """Predicted boxes (K, 5, cyan) on windows cut around the true boxes (K, 5, red) of
    images (K, 200, 200), turned and scaled as the refiner's windows are, showing their
    thresholded copy (the outline pixels that stand out of the noise): how a box lies on
    the ship, whatever it was cut around. Titles give the IoU."""
    from .refiner import crop_windows, refinement_targets  # the refiner module imports Keras

    windows = crop_windows(images, labels)
    truth = refinement_targets(labels, labels)
    corrections = refinement_targets(labels, boxes)
    return plot_refinements(windows, truth, corrections, None, columns, channel=1)


OUTLINE_COLOUR = "gold"


def plot_outline_fits(
    images: np.ndarray,
    ratio_maps: np.ndarray,
    labels: np.ndarray,
    starts: np.ndarray,
    fitted: np.ndarray,
    corners: np.ndarray,
    margin_px: float = 10.0,
) -> plt.Figure:
    """What `outline_fit.fit_outlines` does, one column per ship: above, the image
    (K, 200, 200) around the true box (K, 5, red) with the box the fit started from
    (K, 5, dashed), the fitted box (K, 5, cyan) and the fitted outline (corners (K, 4, 2),
    gold); below, the pixels' log ratios (K, 200, 200) with the same outline. Titles give
    the IoU with the truth before and after."""
    images = check_images(images)
    count = len(images)
    if count == 0:
        raise ValueError("plot_outline_fits needs at least one image")
    fig, axes = plt.subplots(2, count, figsize=(2.5 * count + 0.6, 5.2), squeeze=False)
    before, after = rotated_iou(starts, labels), rotated_iou(fitted, labels)
    styles = (IMAGE_STYLE, LOG_RATIO_STYLE)
    for index in range(count):
        half = max(labels[index, 3], labels[index, 4]) / 2 + margin_px
        centre = labels[index, :2]
        for row, picture in enumerate((images[index], ratio_maps[index])):
            ax = axes[row, index]
            shown = ax.imshow(picture, interpolation="nearest", **styles[row])
            if row == 0:
                start = box_corners(starts[index : index + 1])[0]
                draw_polygon(ax, start, "--", color="0.85", linewidth=1.0)
                draw_box(ax, labels[index], TRUE_COLOUR, show_nose=False)
                draw_box(ax, fitted[index], PREDICTED_COLOUR, show_nose=False)
                ax.set_title(f"IoU {before[index]:.2f} -> {after[index]:.2f}", fontsize=9)
            draw_polygon(ax, corners[index], color=OUTLINE_COLOUR, linewidth=1.0)
            ax.set_xlim(centre[0] - half, centre[0] + half)
            ax.set_ylim(centre[1] + half, centre[1] - half)
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
    fig.subplots_adjust(left=0.02, right=0.88, top=0.93, bottom=0.03, wspace=0.08, hspace=0.12)
    colour_bar = fig.add_axes((0.9, 0.08, 0.015, 0.36))
    fig.colorbar(shown, cax=colour_bar, label="log ratio")
    return fig


def plot_line_free_fits(
    images: np.ndarray,
    boxes: np.ndarray,
    lines: Sequence[np.ndarray],
    ratio_maps: np.ndarray,
    free_maps: np.ndarray,
    fits: Sequence,
    titles: Sequence[str],
    margin_px: float = 24.0,
) -> plt.Figure:
    """What finding the noise lines changes for the outline fit, one row per image, each
    panel around the box (K, 5) the fit starts from, `margin_px` beyond its longer side:
    the image (K, 200, 200) with that box (dashed) and its long lines
    (`line_search.find_lines`, (L, 6) per image, cyan); the pixels' log ratios
    (K, 200, 200) and the line-free ones (K, 200, 200), each with the outline fitted on it
    from the box (gold). `fits` holds the two `outline_fit.OutlineFits` (K boxes each), on
    the plain and on the line-free maps; `titles` (K,) name the rows."""
    images = check_images(images)
    boxes = check_boxes(boxes, "boxes")
    count = len(images)
    if count == 0 or len(titles) != count or len(lines) != count or len(boxes) != count:
        raise ValueError(
            f"need one box, one title and one set of lines per image, got {count} images"
        )
    fig, axes = plt.subplots(count, 3, figsize=(7.6, 2.7 * count), squeeze=False)
    styles = (IMAGE_STYLE, LOG_RATIO_STYLE, LOG_RATIO_STYLE)
    for row in range(count):
        half = max(boxes[row, 3], boxes[row, 4]) / 2 + margin_px
        centre = boxes[row, :2]
        pictures = (images[row], ratio_maps[row], free_maps[row])
        for column, picture in enumerate(pictures):
            ax = axes[row, column]
            ax.imshow(picture, interpolation="nearest", **styles[column])
            if column == 0:
                for x0, y0, x1, y1 in lines[row][:, :4]:
                    ax.plot([x0, x1], [y0, y1], color="tab:cyan", linewidth=1.5, alpha=0.5)
                start = box_corners(boxes[row : row + 1])[0]
                draw_polygon(ax, start, "--", color="white", linewidth=1.2)
                ax.set_title(titles[row], fontsize=9)
            else:
                fitted = fits[column - 1]
                draw_polygon(ax, fitted.corners[row], color=OUTLINE_COLOUR, linewidth=1.2)
                where = "log ratios" if column == 1 else "lines made neutral"
                ax.set_title(f"{where}: L = {fitted.log_ratios[row]:.0f}", fontsize=9)
            ax.set_xlim(centre[0] - half, centre[0] + half)
            ax.set_ylim(centre[1] + half, centre[1] - half)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig
