"""Chapter 6's figures: IoU histograms, scores by group and galleries of samples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from spaceship_utils.plotting.samples import plot_sample_grid


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


def plot_score_by_group(
    splits: Mapping[str, Sequence[Mapping]], threshold: float = 0.7
) -> plt.Figure:
    """Bar charts of the challenge score per group, one panel per split.

    `splits` maps a split name to rows of `harness.score_by_group` (group, samples, score).
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
