"""Training curves: loss and validation number per epoch, the kept epoch marked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np


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
