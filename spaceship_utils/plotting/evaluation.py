"""Scores as figures: IoU histograms, scores by group and galleries of samples (chapters
6 and 8), the score of each stage and its cost (chapter 12)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from spaceship_utils.plotting.samples import plot_sample_grid
from spaceship_utils.plotting.style import COLUMN_INCHES


def mark_level(ax: plt.Axes, x: float, label: str) -> None:
    """A dashed vertical line at `x` with its `label` above the plot, where no bar can hide
    it."""
    ax.axvline(x, color="black", linestyle="--", linewidth=1)
    ax.annotate(
        label,
        (x, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(0, 3),
        textcoords="offset points",
        ha="center",
        va="bottom",
    )


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
    mark_level(ax, threshold, f"IoU = {threshold}")
    ax.set_xlabel("IoU with the true box (misses count 0)")
    ax.set_ylabel("samples")
    # Upper left, but right of the bar at IoU 0 (the misses), clear of the threshold's label.
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(0.08, 1.0))
    fig.tight_layout()
    return fig


def plot_score_by_group(
    splits: Mapping[str, Sequence[Mapping]], threshold: float = 0.7, overall: float | None = None
) -> plt.Figure:
    """Bar charts of the challenge score per group, one panel per split, with the `overall`
    score (of all samples) as a dashed line if given. The y axis ends a little above the
    highest bar, at 1 at most, so that small differences between groups show.

    `splits` maps a split name to rows of `harness.score_by_group` (group, samples, score).
    """
    fig, axes = plt.subplots(
        1,
        len(splits),
        figsize=(COLUMN_INCHES, 3.8),
        sharey=True,
        squeeze=False,
    )
    highest = 0.0
    for ax, (name, rows) in zip(axes.flat, splits.items(), strict=True):
        rows = [row for row in rows if row["group"] != "no ship"]
        positions = np.arange(len(rows))
        scores = np.array([row["score"] for row in rows])
        samples = np.array([row["samples"] for row in rows])
        # One standard error of a rate on that many samples.
        errors = np.sqrt(scores * (1 - scores) / np.maximum(samples, 1))
        highest = max(highest, float(np.max(scores + errors, initial=0.0)))
        ax.bar(positions, scores, yerr=errors, color="tab:blue", alpha=0.8, capsize=3)
        for position, count in zip(positions, samples, strict=True):
            ax.text(position, 0.02, f"{count:,}", ha="center", color="white", rotation=90)
        if overall is not None:
            ax.axhline(overall, color="black", linestyle="--", linewidth=1)
        ax.set_xticks(positions, [_short_group(row["group"]) for row in rows])
        ax.set_title(GROUP_TITLES.get(name, f"by {name}"))
    axes[0, 0].set_ylim(0, min(1.0, np.ceil(10 * highest + 1) / 10))  # shared by the panels
    axes[0, 0].set_ylabel(f"share with IoU > {threshold}")
    note = "white: samples per bar; bars: ±1 standard error"
    if overall is not None:
        note += f"; dashed: all samples ({overall:.3f})"
    fig.text(0.99, 0.99, note, ha="right", va="top")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


GROUP_TITLES = {"size": "by ship width (px)", "edge": "by the image edge", "yaw": "by yaw"}
"""Panel titles of `plot_score_by_group` for the splits of `harness.ship_groups`, which
carry the words its tick labels leave out."""


def _short_group(group: str) -> str:
    """A group's name without the word its panel title holds, on two lines if long:
    'width 18-23' -> '18-23', 'yaw 90-180°' -> '90-\\n180°', 'outline cut by the edge' ->
    'cut by\\nthe edge'."""
    for prefix in ("width ", "yaw ", "outline "):
        group = group.removeprefix(prefix)
    if len(group) > 6:  # two lines, so that neighbouring labels do not overlap
        for mark in ("-", " by "):
            head, found, tail = group.partition(mark)
            if found:
                return f"{head}{found.rstrip()}\n{tail}"
    return group


def plot_gallery(
    images: Sequence[np.ndarray],
    true_boxes: Sequence[np.ndarray],
    predicted_boxes: Sequence[np.ndarray],
    ious: Sequence[float],
    title: str,
    columns: int = 4,
    zoom: bool = False,
) -> plt.Figure:
    """A titled grid of evaluated samples with their IoU (or which kind of miss: no box
    on a ship, a box on an empty image), each panel cropped to its boxes with `zoom`; says
    so when there are none."""
    if len(images) == 0:
        fig, ax = plt.subplots(figsize=(6.4, 0.8))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{title}: no sample fell in this range", ha="center", va="center")
        return fig
    fig = plot_sample_grid(
        np.stack(images),
        np.stack(true_boxes),
        np.stack(predicted_boxes),
        titles=[
            _sample_verdict(true, predicted, iou)
            for true, predicted, iou in zip(true_boxes, predicted_boxes, ious, strict=True)
        ],
        columns=columns,
        zoom=zoom,
    )
    fig.suptitle(title, y=1.02)
    return fig


def _sample_verdict(true_box: np.ndarray, predicted_box: np.ndarray, iou: float) -> str:
    """What a gallery panel says: the IoU, or which kind of miss scores 0."""
    if np.isnan(predicted_box).any():
        return "ship missed: no box"
    if np.isnan(true_box).any():
        return "box, but no ship"
    return f"IoU {iou:.2f}"


def plot_stage_scores(results: Mapping, threshold: float = 0.7) -> plt.Figure:
    """The score of each pipeline (`harness.Evaluation`s by name, in the order the stages
    join) as a dot with ±1 standard error, joined as a staircase, each value written."""
    names = list(results)
    scores = np.array([results[name].score for name in names])
    errors = np.array([results[name].standard_error for name in names])
    positions = np.arange(len(names))[::-1]
    fig, ax = plt.subplots(figsize=(COLUMN_INCHES, 0.45 * len(names) + 1.0))
    ax.step(scores, positions, where="post", color="0.75", linewidth=1)
    # A thin vertical tick for the score, so that its error bar (a few pixels) is not hidden.
    ax.errorbar(scores, positions, xerr=errors, fmt="|", markersize=12, color="tab:blue", capsize=4)
    for score, position in zip(scores, positions, strict=True):
        ax.annotate(
            f"{score:.3f}",
            (score, position),
            xytext=(0, 7),
            textcoords="offset points",
            ha="center",
        )
    ax.set_yticks(positions, names)
    ax.set_ylim(-0.6, len(names) - 0.3)
    ax.set_xlabel(f"score (AP@{threshold}), ±1 standard error")
    fig.tight_layout()
    return fig


def plot_latency(costs: Sequence[Mapping], budget_ms: float) -> plt.Figure:
    """Milliseconds per image of each pipeline (rows of `cost.compare_costs`) as bars, with
    the budget as a dashed line."""
    names = [cost["pipeline"] for cost in costs]
    times = np.array([cost["ms_per_image"] for cost in costs])
    positions = np.arange(len(names))[::-1]
    fig, ax = plt.subplots(figsize=(COLUMN_INCHES, 0.35 * len(names) + 1.0))
    colours = np.where(times <= budget_ms, "tab:blue", "tab:orange")
    ax.barh(positions, times, color=colours)
    for time_ms, position in zip(times, positions, strict=True):
        ax.text(time_ms, position, f" {time_ms:.1f}", va="center")
    mark_level(ax, budget_ms, f"budget {budget_ms:g} ms")
    ax.set_yticks(positions, names)
    over = " (orange: over the budget)" if np.any(times > budget_ms) else ""
    ax.set_xlabel(f"milliseconds per image{over}")
    ax.set_xlim(0, max(times.max(), budget_ms) * 1.15)
    fig.tight_layout()
    return fig
