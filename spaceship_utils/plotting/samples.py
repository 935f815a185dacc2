"""Sample images with their true (red) and predicted (cyan) boxes, alone or in a grid."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from spaceship_utils.core.geometry import box_corners
from spaceship_utils.core.validation import check_images
from spaceship_utils.data.generator import first_centred_layers
from spaceship_utils.plotting.style import (
    BOOK_STYLE,
    COLUMN_INCHES,
    PREDICTED_COLOUR,
    TRUE_COLOUR,
    draw_box,
)


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
    zoom: bool = False,
) -> plt.Figure:
    """A grid of samples: images (N, 200, 200), optional (N, 5) true and predicted boxes;
    with `zoom`, each panel is cropped to its boxes (`zoom_on_boxes`), so a 30-px ship is
    not lost in 200 px of noise."""
    images = check_images(images)
    count = len(images)
    rows = max(1, int(np.ceil(count / columns)))
    panel_size = min(panel_size, COLUMN_INCHES / columns)  # the grid fits the column
    fig, axes = plt.subplots(
        rows, columns, figsize=(panel_size * columns, panel_size * rows), squeeze=False
    )
    for index, ax in enumerate(axes.flat):
        if index >= count:
            ax.axis("off")
            continue
        boxes = [None if boxes is None else boxes[index] for boxes in (true_boxes, predicted_boxes)]
        plot_sample(ax, images[index], *boxes, None if titles is None else titles[index])
        if zoom:
            zoom_on_boxes(ax, boxes)
    fig.tight_layout()
    return fig


def zoom_on_boxes(
    ax: plt.Axes, boxes: Sequence[np.ndarray | None], margin_px: float = 12.0
) -> None:
    """Crop `ax` to a square around the corners of the boxes given (each (5,); None and NaN
    boxes left out), `margin_px` beyond them; no box: the axes keep the whole image. Where
    the square runs past the image's edge, the axes show hatching, not the image."""
    corners = [
        box_corners(np.asarray(box, dtype=np.float64)[None])[0]
        for box in boxes
        if box is not None and not np.isnan(box).any()
    ]
    if not corners:
        return
    points = np.concatenate(corners)
    centre = (points.min(axis=0) + points.max(axis=0)) / 2
    half = (points.max(axis=0) - points.min(axis=0)).max() / 2 + margin_px
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] + half, centre[1] - half)  # rows grow downwards
    ax.patch.set_facecolor("0.92")  # beyond the image's edge, under the image itself
    ax.patch.set_edgecolor("0.7")
    ax.patch.set_hatch("////")


def plot_task(image: np.ndarray, ship: np.ndarray, true_box: np.ndarray) -> plt.Figure:
    """The task in one figure: an image (200, 200) with its true box (x, y, yaw, width,
    height) in red, and beside it the ship's own layer (200, 200) zoomed on the box, the
    outline the noise hides (`data.generator.make_layers`)."""
    fig, (whole, zoom) = plt.subplots(1, 2, figsize=(COLUMN_INCHES, 3.6))
    plot_sample(whole, image, true_box, title="an image and its box (200 × 200 px)")
    plot_sample(zoom, ship, true_box, title="the ship hidden there, zoomed")
    reach = np.hypot(true_box[3], true_box[4]) / 2 + 6  # the box's corners and 6 px
    zoom.set_xlim(true_box[0] - reach, true_box[0] + reach)
    zoom.set_ylim(true_box[1] + reach, true_box[1] - reach)
    whole.indicate_inset_zoom(zoom, edgecolor="gold")
    fig.tight_layout()
    return fig


def draw_intro_figure() -> plt.Figure:
    """The book's opening figure, `book/_static/task.jpg` (the introduction is a page, not
    a chapter, so the file is committed and a test checks it is what this draws):
    `plot_task` on chapter 1's first sample (seed 0: its first ship centred well inside
    the image)."""
    state = np.random.get_state()  # the caller's legacy stream is left as it was
    np.random.seed(0)
    try:
        layers = first_centred_layers(low=60, high=140)
    finally:
        np.random.set_state(state)
    with plt.rc_context(BOOK_STYLE):
        return plot_task(layers.image, layers.ship, layers.label)
