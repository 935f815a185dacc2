"""Chapters 1-2's figures: the generator's layers, label histograms, pixel values and what
a threshold keeps."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

from spaceship_utils.core.geometry import box_corners
from spaceship_utils.core.validation import check_boxes, check_images, has_box
from spaceship_utils.data.generator import NOISE_LEVEL
from spaceship_utils.data.pixel_model import (
    likelihood_ratio,
    noise_pixel_density,
    ship_pixel_density,
)
from spaceship_utils.data.preprocessing import THRESHOLD
from spaceship_utils.plotting.samples import plot_sample
from spaceship_utils.plotting.style import (
    CLASS_COLOURS,
    COLUMN_INCHES,
    OUTLINE_COLOUR,
    THRESHOLD_COLOUR,
)
from spaceship_utils.studies.pixel_statistics import PIXEL_CLASSES


def _show_pixel_ticks(ax: plt.Axes) -> None:
    """Put pixel coordinates back on an image panel (`plot_sample` hides them)."""
    ax.xaxis.set_major_locator(plt.MaxNLocator(4, integer=True))
    ax.yaxis.set_major_locator(plt.MaxNLocator(4, integer=True))


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


def plot_layer_breakdown(
    noise: np.ndarray, lines: np.ndarray, ship: np.ndarray, label: np.ndarray
) -> plt.Figure:
    """The three layers of one sample (each (200, 200)) and their pixel-wise maximum, boxed."""
    image = np.maximum(np.maximum(noise, lines), ship)
    panels = (
        (noise, None, "background noise"),
        (lines, None, "noise lines"),
        (ship, label, "ship (true box in red)"),
        (image, label, "image: their maximum"),
    )
    fig, axes = plt.subplots(1, 4, figsize=(COLUMN_INCHES, 2.3))
    for ax, (layer, box, title) in zip(axes, panels, strict=True):
        plot_sample(ax, layer, box, title=title)
        _show_pixel_ticks(ax)
        ax.set_xlabel("x (px)")
    axes[0].set_ylabel("y (px)")
    fig.tight_layout()
    return fig


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
    fig, axes = plt.subplots(2, 3, figsize=(COLUMN_INCHES, 5.0))
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
    the outline alone (if `outlines` is given, else the raw image) and the thresholded image,
    with the outline's removed pixels in gold (if `outlines` is given; red is the true
    box), so that the kept outline pixels (white dots on the gold path) can be told from
    line pixels.

    images, thresholded and outlines (N, 200, 200); boxes (N, 5) with a ship in every row.
    """
    images = check_images(images)
    thresholded = check_images(thresholded, "thresholded")
    boxes = check_boxes(boxes, "boxes")
    references = images if outlines is None else check_images(outlines, "outlines")
    fig, axes = plt.subplots(
        len(images), 4, figsize=(COLUMN_INCHES, 1.95 * len(images)), squeeze=False
    )
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
            if column == 3 and outlines is not None:
                # The path shows where the threshold removed outline pixels; kept ones stay white.
                _shade_path(ax, (references[row] > 0) & (thresholded[row] == 0))
        axes[row, 0].set_ylabel(f"sample {row + 1}")
    if outlines is None:
        fig.tight_layout()
        return fig
    fig.text(
        0.99,
        0.01,
        "gold, last column: outline pixels the threshold removed",
        ha="right",
        va="bottom",
        color="darkgoldenrod",
    )
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def _shade_path(ax: plt.Axes, mask: np.ndarray) -> None:
    """Shade the pixels of `mask` (200, 200) in the outline's colour over an image panel."""
    shade = ListedColormap([OUTLINE_COLOUR])
    ax.imshow(np.ma.masked_where(~mask, mask), cmap=shade, alpha=0.6, interpolation="nearest")


def plot_threshold_sweep(sweep, highlight: float | None = THRESHOLD) -> plt.Figure:
    """Three panels against the threshold: share of pixels kept per class, ship pixels kept
    per image, and the per-image outline SNR (medians with the middle half shaded).

    `sweep` is a `pixel_statistics.ThresholdSweep`; `highlight` marks a threshold (default:
    the seed's, `preprocessing.THRESHOLD`).
    """
    thresholds = sweep.thresholds
    classes = PIXEL_CLASSES
    fig, axes = plt.subplots(1, 3, figsize=(COLUMN_INCHES, 3.4))
    shares = 100 * sweep.kept_share()
    # Outline and line pixels are kept at almost the same rates: the outline's thick line
    # under the lines' thin dashed one keeps both in sight.
    style = {"outline": {"linewidth": 4, "alpha": 0.6}, "line": {"linestyle": "--"}}
    for code, name in enumerate(classes):
        axes[0].plot(
            thresholds,
            shares[:, code],
            marker="o",
            markersize=3,
            color=CLASS_COLOURS[name],
            label=f"{name} pixels",
            **style.get(name, {}),
        )
    axes[0].set_ylabel("pixels kept (%)")
    per_image = (
        (axes[1], sweep.kept_counts[:, :, 0], "outline px kept per image"),
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
    # One legend for all panels, below them: the panels are too narrow to hold one.
    handles, labels = zip(
        *(pair for ax in axes[:2] for pair in zip(*ax.get_legend_handles_labels(), strict=True)),
        strict=True,
    )
    fig.legend(handles, labels, frameon=False, loc="lower center", ncol=3)
    for ax in axes:
        ax.set_xlabel("threshold")
        if highlight is not None:
            ax.axvline(highlight, color=THRESHOLD_COLOUR, linestyle=":", linewidth=1.5)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    return fig


def plot_pixel_value_densities(sweep, noise_level: float = NOISE_LEVEL) -> plt.Figure:
    """Left: derived densities of a noise pixel and an outline pixel, over the measured
    histograms in `sweep` (a `pixel_statistics.ThresholdSweep`). Right: their likelihood ratio.
    """
    grid = np.linspace(0, 1, 1001)
    edges = sweep.bin_edges
    fig, axes = plt.subplots(1, 2, figsize=(COLUMN_INCHES, 3.4))
    for code, name, density in (
        (2, "noise", noise_pixel_density),
        (0, "outline", ship_pixel_density),
    ):
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
    axes[0].set_ylim(0, 3.1)  # room above the densities, so the legend covers none of them
    axes[0].legend(frameon=False, loc="upper left")

    ratio = likelihood_ratio(grid, noise_level)
    finite = np.isfinite(ratio)
    axes[1].plot(
        grid[finite], ratio[finite], color="black", label="outline density / noise density"
    )
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
    axes[1].set_ylim(0, 2.9)  # room above the curve for the legend, framed over the band
    axes[1].legend(loc="upper left", framealpha=0.95, edgecolor="none")
    for ax in axes:
        ax.set_xlabel("pixel value")
        ax.set_xlim(0, 1)
        ax.axvline(noise_level, color=THRESHOLD_COLOUR, linestyle=":", linewidth=1.5)
    fig.tight_layout()
    return fig
