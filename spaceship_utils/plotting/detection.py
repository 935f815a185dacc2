"""Every figure of the book, one named function per figure kind.

Functions take a matplotlib `Axes` where a figure is one panel, and return the `Figure`
where they make a whole figure, so a notebook cell is one call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from spaceship_utils.core.geometry import box_corners, rotated_iou
from spaceship_utils.core.validation import check_boxes, check_images
from spaceship_utils.networks.windows import crop_windows, refinement_targets, window_frame_boxes
from spaceship_utils.plotting.samples import plot_sample
from spaceship_utils.plotting.style import (
    COLUMN_INCHES,
    IMAGE_STYLE,
    LOG_RATIO_STYLE,
    OUTLINE_COLOUR,
    PREDICTED_COLOUR,
    TRUE_COLOUR,
    draw_box,
    draw_polygon,
)

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
    legend_rows = -(-len(histories) // 2)  # two runs a row, under the panels
    legend_inches = 0.22 * legend_rows + 0.1
    height = 3.0 + legend_inches
    fig, axes = plt.subplots(
        1,
        len(columns),
        figsize=(COLUMN_INCHES if by_time else COLUMN_INCHES / 2 + 0.5, height),
        sharey=True,
        squeeze=False,
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
    # Below the panels: inside, the legend would cover the curves it names.
    fig.legend(frameon=False, loc="lower center", ncol=2, handles=axes[0].get_lines())
    fig.tight_layout(rect=(0, legend_inches / height, 1, 1))
    return fig


# --- Chapter 9: the refiner and its IoU loss -----------------------------------------------


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
    fig.legend(loc="outside lower center", ncol=3, frameon=False)  # the book's 10-pt text
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

    `targets` (K, 6) from `windows.refinement_targets`, `corrections` (K, 6) the refiner's
    outputs, `unchanged` (K, 6) `windows.unchanged_corrections` of the proposals. Titles
    give the IoU with the truth before and after. With `unchanged=None` no proposal is
    drawn and titles give the IoU of the cyan box alone. `channel` 0 shows the raw window,
    1 its thresholded copy.
    """
    windows = np.asarray(windows)
    count, size = len(windows), windows.shape[1]
    rows = -(-count // columns)
    panel = COLUMN_INCHES / columns  # the figure is as wide as the book's column
    fig, axes = plt.subplots(
        rows, columns, figsize=(COLUMN_INCHES, (panel + 0.25) * rows), squeeze=False
    )

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
    images: np.ndarray, labels: np.ndarray, boxes: np.ndarray, columns: int = 4
) -> plt.Figure:
    """Predicted boxes (K, 5, cyan) on windows cut around the true boxes (K, 5, red) of
    images (K, 200, 200), turned and scaled as the refiner's windows are, showing their
    thresholded copy (the outline pixels that stand out of the noise): how a box lies on
    the ship, whatever it was cut around. Titles give the IoU."""
    windows = crop_windows(images, labels)
    truth = refinement_targets(labels, labels)
    corrections = refinement_targets(labels, boxes)
    return plot_refinements(windows, truth, corrections, None, columns, channel=1)


# --- Chapter 11: the outline fits and the line search --------------------------------------


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
    panel = min(2.5, (COLUMN_INCHES - 0.6) / count)  # the colour bar takes 0.6 in
    fig, axes = plt.subplots(
        2, count, figsize=(panel * count + 0.6, 2 * panel + 0.6), squeeze=False
    )
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
