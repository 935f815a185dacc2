"""The book's figure style: fonts, colours with one meaning each, and drawing a box."""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np

from spaceship_utils.core.geometry import box_corners, heading_vectors
from spaceship_utils.core.validation import check_boxes

COLUMN_INCHES = 7.5
"""The width of the book's text column at the figures' 100 dpi: 756 px in a 1280-px
window. A figure no wider is shown at its natural size, its 10-pt text about 14 px; the
page tests allow no image drawn at less than 0.8 of its width (text under 11 px)."""


TRUE_COLOUR = "tab:red"


PREDICTED_COLOUR = "tab:cyan"


FIGURE_FORMAT = ("jpeg", {"pil_kwargs": {"quality": 75}})
"""How notebooks embed figures: JPEG, because panels of uniform noise do not compress as
PNG (a gallery of eight images is about 1 MB as PNG and well under 300 KB as JPEG)."""


BOOK_STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.cmap": "gray",
}
"""The Matplotlib settings of every figure in the book."""


def use_book_style() -> None:
    """Matplotlib defaults for the book: readable fonts, screen DPI, no top/right spines.

    In a notebook, figures are also embedded as JPEG (`FIGURE_FORMAT`) to keep pages light.
    """
    if "matplotlib_inline" in sys.modules and "IPython" in sys.modules:
        from IPython import get_ipython

        if get_ipython() is not None:
            backend_inline = sys.modules["matplotlib_inline"].backend_inline
            backend_inline.set_matplotlib_formats(FIGURE_FORMAT[0], **FIGURE_FORMAT[1])
    plt.rcParams.update(BOOK_STYLE)


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


# --- Chapters 1-3: data and preprocessing figures ---------------------------------------

# Figures of chapters 1-3. They take arrays (or the `pixel_statistics.ThresholdSweep` they
# are drawn from) and compute nothing but what a picture needs; the numbers come from
# `label_statistics`, `pixel_statistics` and `label_losses`.

THRESHOLD_COLOUR = "tab:orange"


PI_TICKS = (np.pi * np.arange(5) / 2, ["0", "π/2", "π", "3π/2", "2π"])


CLASS_COLOURS = {"outline": "tab:red", "line": "tab:blue", "noise": "tab:gray"}


ENCODING_STYLES = {
    "raw": ("yaw / 2π (the seed)", "tab:purple"),
    "sincos": ("sin, cos of yaw", "tab:green"),
    "sincos2": ("sin, cos of 2 yaw", "tab:orange"),
}


OUTLINE_COLOUR = "gold"
