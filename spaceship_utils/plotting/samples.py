"""Sample images with their true (red) and predicted (cyan) boxes, alone or in a grid."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from spaceship_utils.core.validation import check_images
from spaceship_utils.plotting.style import PREDICTED_COLOUR, TRUE_COLOUR, draw_box


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
