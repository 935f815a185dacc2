"""The map of part 3: the shipped pipeline as a row of stages, drawn up to a chapter's own."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from spaceship_utils.plotting.style import COLUMN_INCHES

PIPELINE_STAGES = (
    ("detector", 7),
    ("refiner,\nclassifier's\nvote", 9),
    ("verifier,\nrestarts", 10),
    ("outline\nfits", 11),
    ("line-free\nfits", 11),
)
"""Each stage of the shipped pipeline, in order: its label in the figure, its chapter."""

NEW_COLOUR = "#fdd9a0"
BUILT_COLOUR = "#d6e6f5"
LATER_COLOUR = "#f2f2f2"


def plot_pipeline(chapter: int) -> plt.Figure:
    """The pipeline from image to box as chapter `chapter` (7-12) leaves it: the stages of
    earlier chapters drawn, the chapter's own highlighted, later ones greyed and dashed."""
    if chapter not in range(7, 13):
        raise ValueError(f"chapter must be one of 7-12 (part 3), got {chapter!r}")
    labels = ["image"] + [label for label, _ in PIPELINE_STAGES] + ["box or\nno ship"]
    fig, ax = plt.subplots(figsize=(COLUMN_INCHES, 1.7))
    ax.set_xlim(0, len(labels))
    ax.set_ylim(0, 1.7)
    ax.axis("off")
    for index, label in enumerate(labels):
        stage = index - 1  # -1: the image; len(PIPELINE_STAGES): the answer
        built_in = PIPELINE_STAGES[stage][1] if 0 <= stage < len(PIPELINE_STAGES) else None
        later = built_in is not None and built_in > chapter
        if built_in == chapter:
            face = NEW_COLOUR
        elif later:
            face = LATER_COLOUR
        else:
            face = "white" if built_in is None else BUILT_COLOUR
        ax.add_patch(
            FancyBboxPatch(
                (index + 0.06, 0.45),
                0.88,
                1.1,
                boxstyle="round,pad=0.02,rounding_size=0.08",
                facecolor=face,
                edgecolor="0.7" if later else "0.3",
                linestyle="--" if later else "-",
            )
        )
        ax.text(
            index + 0.5,
            0.85,
            label,
            ha="center",
            va="center",
            fontsize=8.5,
            color="0.6" if later else "black",
        )
        if built_in is not None:
            ax.text(
                index + 0.5,
                0.22,
                f"ch. {built_in}",
                ha="center",
                va="center",
                fontsize=8.5,
                color="0.6" if later else "0.25",
            )
        if index:
            ax.add_patch(
                FancyArrowPatch(
                    (index - 0.06, 0.85),
                    (index + 0.06, 0.85),
                    arrowstyle="-|>",
                    mutation_scale=10,
                    color="0.4",
                )
            )
    fig.tight_layout(pad=0.2)
    return fig
