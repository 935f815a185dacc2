"""The map of part 3: the shipped pipeline as a row of stages, drawn up to a chapter's own."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from spaceship_utils.plotting.style import COLUMN_INCHES

PIPELINE_STAGES = (
    ("detector", 7),
    ("refiner,\nclassifier's\nvote", 9),
    ("verifier,\nrestarts", 10),
    ("outline fits\non line-free\nmaps", 11),
)
"""Each stage of the shipped pipeline, in order: its label in the figure, its chapter."""

STUDIED_IN = {8: 7}
"""Chapters that add no stage but study one built earlier: chapter -> the chapter whose
stage they highlight (chapter 8 takes chapter 7's detector apart)."""

NEW_COLOUR = "#fdd9a0"
BUILT_COLOUR = "#d6e6f5"
LATER_COLOUR = "#f2f2f2"


def plot_pipeline(chapter: int) -> plt.Figure:
    """The pipeline from image to box as chapter `chapter` (7-12) leaves it: the stages of
    earlier chapters drawn, the chapter's own (or the one it studies, `STUDIED_IN`)
    highlighted, later ones greyed and dashed; a key under the boxes says so."""
    if chapter not in range(7, 13):
        raise ValueError(f"chapter must be one of 7-12 (part 3), got {chapter!r}")
    highlighted = STUDIED_IN.get(chapter, chapter)
    labels = ["image"] + [label for label, _ in PIPELINE_STAGES] + ["box or\nno ship"]
    fig, ax = plt.subplots(figsize=(COLUMN_INCHES, 1.95))
    ax.set_xlim(0, len(labels))
    ax.set_ylim(-0.3, 1.7)
    ax.axis("off")
    for index, label in enumerate(labels):
        stage = index - 1  # -1: the image; len(PIPELINE_STAGES): the answer
        built_in = PIPELINE_STAGES[stage][1] if 0 <= stage < len(PIPELINE_STAGES) else None
        later = built_in is not None and built_in > chapter
        if built_in == highlighted:
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
                edgecolor="0.55" if later else "0.3",
                linestyle="--" if later else "-",
            )
        )
        ax.text(
            index + 0.5,
            0.85,
            label,
            ha="center",
            va="center",
            fontsize=9,
            color="0.4" if later else "black",
        )
        if built_in is not None:
            ax.text(
                index + 0.5,
                0.22,
                f"ch. {built_in}",
                ha="center",
                va="center",
                fontsize=9,
                color="0.4" if later else "0.25",
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
    ax.text(
        len(labels) / 2,
        -0.2,
        _key(chapter, highlighted),
        ha="center",
        va="center",
        fontsize=9,
    )
    fig.tight_layout(pad=0.2)
    return fig


def _key(chapter: int, highlighted: int) -> str:
    """The line under the map that says what the colours drawn for `chapter` mean, where
    the stages built in chapter `highlighted` are orange."""
    built = [stage_chapter for _, stage_chapter in PIPELINE_STAGES]
    own = "the stage this chapter studies" if chapter in STUDIED_IN else "this chapter's stage"
    parts = []
    if highlighted in built:
        parts.append(f"orange: {own}")
    if any(stage_chapter < highlighted for stage_chapter in built):
        parts.append("blue: built in earlier chapters" if parts else "blue: every stage")
    if any(stage_chapter > chapter for stage_chapter in built):
        parts.append("grey, dashed: later chapters")
    return "; ".join(parts)
