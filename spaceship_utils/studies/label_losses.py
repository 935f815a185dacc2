"""Losses on the labels: how each box column and each yaw code weighs in a regression loss.

The share of an MSE (and of its gradient) that each label column carries under a given
scaling, the squared error of the yaw codes ('raw', 'sincos', 'sincos2'), what the
0 / 2 pi seam costs the raw code, and how the IoU falls as a box is turned. Plain NumPy
on (N, 5) boxes in pixels and radians; chapter 3 draws and prints these numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spaceship_utils.core.geometry import rotated_iou, wrapped_angle_error
from spaceship_utils.core.validation import check_boxes, check_same_length
from spaceship_utils.data.preprocessing import encode_yaw
from spaceship_utils.studies.label_statistics import ship_rows


def mean_label_predictor(labels: np.ndarray) -> np.ndarray:
    """The naive predictor: every ship row predicted as the mean ship label, (N, 5) -> (N, 5)."""
    boxes = ship_rows(labels)
    return np.broadcast_to(boxes.mean(axis=0), boxes.shape).copy()


def component_loss_shares(
    predictions: np.ndarray, labels: np.ndarray, scale: np.ndarray | None = None
) -> np.ndarray:
    """(5,) share of an MSE loss that each label column contributes; the shares sum to 1.

    Both arrays (N, 5), ships only, are divided by `scale` (5,) first (None: raw units), as a
    network trained on scaled targets would see them.
    """
    errors = _scaled_errors(predictions, labels, scale)
    per_column = np.mean(errors**2, axis=0)
    return per_column / per_column.sum()


def component_gradient_shares(
    predictions: np.ndarray, labels: np.ndarray, scale: np.ndarray | None = None
) -> np.ndarray:
    """(5,) share of the mean |gradient| of the MSE with respect to each output; sums to 1.

    The MSE's gradient for output k is proportional to that output's error, so this is the
    share of mean absolute (scaled) error per column: how hard each output gets pushed.
    """
    errors = _scaled_errors(predictions, labels, scale)
    per_column = np.mean(np.abs(errors), axis=0)
    return per_column / per_column.sum()


LARGEST_YAW_LOSS = {"raw": 1.0, "sincos": 2.0, "sincos2": 2.0}
"""The supremum of `encoded_yaw_loss` per encoding: codes at opposite ends (raw: 0 and 1) or
opposite points of the unit circle (the mean of the two squared differences is then 2)."""


def encoded_yaw_loss(
    yaw_true_rad: np.ndarray,
    yaw_pred_rad: np.ndarray,
    encoding: str = "raw",
    relative: bool = False,
) -> np.ndarray:
    """(N,) squared error between the codes of true and predicted yaw, averaged over the code.

    'raw' codes yaw as yaw / 2 pi (the seed's scaling), 'sincos' as (sin, cos) of yaw and
    'sincos2' as (sin, cos) of 2 * yaw; see `preprocessing.encode_yaw`. With `relative`, the
    loss is divided by its largest possible value (`LARGEST_YAW_LOSS`), so it lies in [0, 1].
    """
    yaw_true_rad, yaw_pred_rad = _yaw_pair(yaw_true_rad, yaw_pred_rad)
    difference = encode_yaw(yaw_pred_rad, encoding) - encode_yaw(yaw_true_rad, encoding)
    loss = np.mean(difference**2, axis=1)
    return loss / LARGEST_YAW_LOSS[encoding] if relative else loss


@dataclass(frozen=True)
class WrapAround:
    """What a fixed angular error does to the raw yaw loss over many true yaws.

    crossing_share: share of pairs whose prediction lies across the 0 / 2 pi seam;
    crossing_loss_share: share of the summed raw-code loss those pairs carry;
    mean_loss: mean loss per encoding; max_angle_error_rad: the largest true angular error.
    """

    crossing_share: float
    crossing_loss_share: float
    mean_loss: dict[str, float]
    max_angle_error_rad: float


def wrap_around(yaw_true_rad: np.ndarray, yaw_offset_rad: float) -> WrapAround:
    """Predict every yaw off by `yaw_offset_rad` (wrapped into [0, 2 pi)) and measure the cost."""
    yaw_true_rad = np.mod(np.asarray(yaw_true_rad, dtype=np.float64).reshape(-1), 2 * np.pi)
    if not yaw_true_rad.size or not np.all(np.isfinite(yaw_true_rad)):
        raise ValueError("yaw_true_rad must hold at least one finite angle")
    if not np.isfinite(yaw_offset_rad) or abs(yaw_offset_rad) >= np.pi:
        raise ValueError(
            f"yaw_offset_rad must be finite and within (-pi, pi), got {yaw_offset_rad}"
        )
    yaw_pred_rad = np.mod(yaw_true_rad + yaw_offset_rad, 2 * np.pi)
    crossing = np.abs(yaw_pred_rad - yaw_true_rad) > np.pi
    raw_loss = encoded_yaw_loss(yaw_true_rad, yaw_pred_rad, "raw")
    mean_loss = {
        encoding: float(np.mean(encoded_yaw_loss(yaw_true_rad, yaw_pred_rad, encoding)))
        for encoding in ("raw", "sincos", "sincos2")
    }
    return WrapAround(
        crossing_share=float(np.mean(crossing)),
        crossing_loss_share=float(raw_loss[crossing].sum() / raw_loss.sum()),
        mean_loss=mean_loss,
        max_angle_error_rad=float(np.max(wrapped_angle_error(yaw_pred_rad, yaw_true_rad))),
    )


def iou_vs_yaw_offset(box: np.ndarray, offsets_rad: np.ndarray) -> np.ndarray:
    """IoU of one box (5,) with copies of itself turned by each offset (K,) -> (K,)."""
    boxes = check_boxes(box, "box")
    if len(boxes) != 1 or np.isnan(boxes).any():
        raise ValueError("box must be one (x, y, yaw, width, height) row without NaN")
    offsets = np.asarray(offsets_rad, dtype=np.float64).reshape(-1)
    copies = np.repeat(boxes, offsets.size, axis=0)
    turned = copies.copy()
    turned[:, 2] += offsets
    return rotated_iou(copies, turned)


def _scaled_errors(
    predictions: np.ndarray, labels: np.ndarray, scale: np.ndarray | None
) -> np.ndarray:
    predictions = check_boxes(predictions, "predictions")
    labels = check_boxes(labels, "labels")
    check_same_length(predictions=predictions, labels=labels)
    if np.isnan(predictions).any() or np.isnan(labels).any():
        raise ValueError("predictions and labels must be ship rows only (no NaN)")
    if scale is None:
        scale = np.ones(predictions.shape[1])
    scale = np.asarray(scale, dtype=np.float64)
    if scale.shape != (predictions.shape[1],) or not np.all(np.isfinite(scale) & (scale > 0)):
        raise ValueError(f"scale must be {predictions.shape[1]} positive numbers, got {scale!r}")
    return (predictions - labels) / scale


def _yaw_pair(yaw_true_rad: np.ndarray, yaw_pred_rad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    true = np.asarray(yaw_true_rad, dtype=np.float64).reshape(-1)
    pred = np.asarray(yaw_pred_rad, dtype=np.float64).reshape(-1)
    check_same_length(yaw_true_rad=true, yaw_pred_rad=pred)
    if not (np.all(np.isfinite(true)) and np.all(np.isfinite(pred))):
        raise ValueError("yaw_true_rad and yaw_pred_rad must be finite angles in radians")
    return true, pred
