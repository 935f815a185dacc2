"""Chapter 3's figures: label components, yaw codes and their losses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from spaceship_utils.plotting.style import COLUMN_INCHES, ENCODING_STYLES, PI_TICKS


def plot_component_shares(
    loss_shares: Mapping[str, np.ndarray],
    gradient_shares: Mapping[str, np.ndarray],
    names: Sequence[str] = ("x", "y", "yaw", "width", "height"),
) -> plt.Figure:
    """Grouped bars: each label column's share of the MSE (left) and of the mean |gradient|
    (right), one bar colour per labelling scheme (the keys, e.g. 'raw', 'seed scale')."""
    fig, axes = plt.subplots(1, 2, figsize=(COLUMN_INCHES, 3.4), sharey=True)
    positions = np.arange(len(names))
    for ax, shares, ylabel in (
        (axes[0], loss_shares, "share of the MSE (%)"),
        (axes[1], gradient_shares, "share of mean |gradient| (%)"),
    ):
        width = 0.8 / len(shares)
        for offset, (scheme, values) in enumerate(shares.items()):
            ax.bar(
                positions + (offset - (len(shares) - 1) / 2) * width,
                100 * np.asarray(values),
                width,
                label=scheme,
            )
        ax.set_xticks(positions, names)
        ax.set_xlabel("label column")
        ax.set_ylabel(ylabel)
        ax.yaxis.set_tick_params(labelleft=True)
    axes[0].legend(frameon=False)
    fig.tight_layout()
    return fig


def plot_yaw_codes(yaw_rad: np.ndarray, codes: Mapping[str, np.ndarray]) -> plt.Figure:
    """What each yaw encoding feeds the network: codes (K, 1) or (K, 2) against yaw (K,)."""
    fig, axes = plt.subplots(
        1,
        len(codes),
        figsize=(min(3.5 * len(codes), COLUMN_INCHES), 3.0),
        sharey=True,
        squeeze=False,
    )
    for ax, (encoding, values) in zip(axes[0], codes.items(), strict=True):
        values = np.asarray(values).reshape(len(yaw_rad), -1)
        title, colour = ENCODING_STYLES.get(encoding, (encoding, "black"))
        for column, linestyle in zip(range(values.shape[1]), ("-", "--"), strict=False):
            part = ("sin", "cos")[column] if values.shape[1] == 2 else "code"
            ax.plot(yaw_rad, values[:, column], linestyle, color=colour, label=part)
        ax.set_title(title)
        ax.set_xlabel("yaw (rad)")
        ax.set_xticks(*PI_TICKS)
        ax.set_ylim(-1.15, 1.7)
        ax.legend(frameon=False, loc="upper center", ncol=2)
        ax.yaxis.set_tick_params(labelleft=True)
    axes[0, 0].set_ylabel("code value")
    fig.tight_layout()
    return fig


def plot_yaw_losses(
    yaw_pred_rad: np.ndarray,
    losses: Mapping[str, np.ndarray],
    one_minus_iou: np.ndarray,
    yaw_true_rad: float,
) -> plt.Figure:
    """Left: each yaw encoding's loss, relative to its largest value, as the prediction sweeps
    the circle (true yaw dotted, yaw + pi faint). Right: what the score sees, 1 - IoU of the
    predicted and the true box."""
    fig, axes = plt.subplots(1, 2, figsize=(COLUMN_INCHES, 3.6), sharex=True)
    for encoding, values in losses.items():
        title, colour = ENCODING_STYLES.get(encoding, (encoding, "black"))
        axes[0].plot(yaw_pred_rad, values, color=colour, label=title)
    axes[0].set_ylabel("yaw loss / its largest value")
    axes[1].plot(yaw_pred_rad, one_minus_iou, color="black", label="1 - IoU (the score's view)")
    axes[1].set_ylabel("1 - IoU with the true box")
    for ax in axes:
        ax.axvline(yaw_true_rad, color="tab:red", linestyle=":", linewidth=1.5)
        ax.axvline(
            np.mod(yaw_true_rad + np.pi, 2 * np.pi),
            color="tab:red",
            linestyle=":",
            linewidth=1,
            alpha=0.5,
        )
        ax.set_xlabel("predicted yaw (rad)")
        ax.set_xticks(*PI_TICKS)
    handles = [
        line for ax in axes for line in ax.get_lines() if not line.get_label().startswith("_")
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig
