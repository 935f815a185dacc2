"""Training curves: loss and validation number per epoch, the kept epoch marked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from spaceship_utils.plotting.style import COLUMN_INCHES

CURVE_COLOURS = {"training": "tab:blue", "validation": "tab:orange"}
"""One colour per curve, the same in every panel and chapter."""
METRIC_NAMES = {
    "loss": "loss",
    "accuracy": "accuracy",
    "ap07": "AP@0.7 (share with IoU > 0.7)",
}
"""The y-axis label of each metric a history records."""


def plot_training_history(
    history: Mapping[str, Sequence[float]],
    metrics: Sequence[str] = ("loss",),
    x_axis: str = "epoch",
    x_label: str | None = None,
    kept: int | None = None,
    levels: Mapping[str, tuple[float, str]] | None = None,
) -> plt.Figure:
    """Training and validation curves, one panel per metric, against epochs or images.

    `x_axis` is 'epoch' (or any per-row count, named by `x_label`) or 'images' (thousands of
    training images, from the history's `images` column). Losses are drawn on a log scale;
    `val_<metric>` entries become the validation curve. `kept` (an epoch, from 1) marks the
    epoch whose weights the run keeps; `levels` draws, per metric, a reference level and
    its label (e.g. {"accuracy": (0.8, "always 'ship'")}).
    """
    if x_axis not in ("epoch", "images"):
        raise ValueError(f"x_axis must be 'epoch' or 'images', got {x_axis!r}")
    if x_axis == "images" and "images" not in history:
        raise ValueError("x_axis='images' needs an 'images' column in the history")
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(min(4.2 * len(metrics), COLUMN_INCHES), 3.5), squeeze=False
    )
    for ax, metric in zip(axes.flat, metrics, strict=True):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if key in history:
                values = np.asarray(history[key], dtype=np.float64)
                if x_axis == "images":
                    x = np.asarray(history["images"], dtype=np.float64) / 1e3
                else:
                    x = np.arange(1, values.size + 1)
                curve = "validation" if key.startswith("val_") else "training"
                ax.plot(
                    x,
                    values,
                    style,
                    color=CURVE_COLOURS[curve],
                    marker="o" if values.size <= 40 else None,
                    markersize=3,
                    label=curve,
                )
        if kept is not None:
            at = history["images"][kept - 1] / 1e3 if x_axis == "images" else kept
            ax.axvline(at, color="black", linestyle=":", linewidth=1, label="kept epoch")
        if levels and metric in levels:
            level, name = levels[metric]
            ax.axhline(level, color="tab:gray", linewidth=1, label=name)
        default_label = "training images (thousands)" if x_axis == "images" else "epoch"
        ax.set_xlabel(x_label or default_label)
        ax.set_ylabel(METRIC_NAMES.get(metric, metric))
        if "loss" in metric:
            ax.set_yscale("log")
    # One legend below the panels, so that it covers no curve (the dips the chapters discuss).
    entries = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    fig.legend(entries.values(), entries.keys(), frameon=False, loc="lower center", ncol=4)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig
