"""The detector's loss: focal loss on the heatmap, and on the cells near each ship an L1 loss
on its box channels (the default) or one of the alternative box losses (`BOX_LOSSES`: the
Gaussian Wasserstein distance chapter 7 compares, the rotated IoU of chapter 9)."""

from __future__ import annotations

from spaceship_utils.core.runtime import import_keras
from spaceship_utils.core.validation import (
    IMAGE_SIZE,
)
from spaceship_utils.networks.detector_targets import (
    OUTPUT_CHANNELS,
    REGRESSION_RADIUS,
    SIZE_REFERENCE,
    STRIDE,
    TARGET_CHANNELS,
    boxes_from_channels,
)
from spaceship_utils.networks.rotated_iou_loss import rotated_iou_tensor

keras = import_keras()


ops = keras.ops


LOSS_OPTIONS = ("box_loss",)
"""Design options that choose the training loss (`design_loss`), not the network."""


def detector_loss(y_true, y_pred):
    """Penalty-reduced focal loss on the heatmap plus L1 / BCE at the cells that learn the box.

    y_true (N, G, G, 9) from `encode_targets`; y_pred (N, G, G, 8) logits and values.
    The heatmap term is averaged over the ships in the batch, the box terms over the cells
    that learn the box (channel 1 of y_true); each divisor is at least one.
    """
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    heat_true, mask = y_true[..., 0], y_true[..., 1]
    logit = y_pred[..., 0]
    probability = ops.sigmoid(logit)
    log_p = -ops.softplus(-logit)
    log_not_p = -ops.softplus(logit)
    positive = ops.cast(heat_true >= 1.0, "float32")
    focal = -(
        positive * (1 - probability) ** 2 * log_p
        + (1 - positive) * (1 - heat_true) ** 4 * probability**2 * log_not_p
    )
    ships = ops.maximum(ops.sum(positive), 1.0)
    heatmap_term = ops.sum(focal) / ships

    cells = ops.maximum(ops.sum(mask), 1.0)
    regression = ops.abs(y_pred[..., 1:7] - y_true[..., 2:8])
    regression_term = ops.sum(regression * mask[..., None]) / cells
    heading_logit = y_pred[..., 7]
    heading_true = y_true[..., 8]
    heading = ops.softplus(heading_logit) - heading_true * heading_logit  # BCE with logits
    heading_term = ops.sum(heading * mask) / cells
    return heatmap_term + regression_term + 0.5 * heading_term


def _gaussian_moments(box):
    """Box channels (dx, dy, log w, log h, sin 2yaw, cos 2yaw) -> the Gaussian's covariance.

    A box of width w and height h turned by yaw stands for the Gaussian with covariance
    R diag(w²/4, h²/4) Rᵀ = p·I + q·[[cos 2yaw, sin 2yaw], [sin 2yaw, -cos 2yaw]], with
    p = (w² + h²)/8 and q = (w² - h²)/8: the doubled angle enters directly, so the Gaussian,
    like the IoU, cannot tell the nose from the tail. Returns p, q, (sin, cos) of 2yaw scaled
    to unit length, and the determinant w²h²/16, with sizes in pixels.
    """
    log_size = ops.clip(box[..., 2:4], -3.0, 3.0)  # keeps exp finite early in training
    width = ops.exp(log_size[..., 0]) * float(SIZE_REFERENCE[0])
    height = ops.exp(log_size[..., 1]) * float(SIZE_REFERENCE[1])
    along, across = width**2 / 4, height**2 / 4
    length = ops.sqrt(box[..., 4] ** 2 + box[..., 5] ** 2 + 1e-6)
    return (
        (along + across) / 2,
        (along - across) / 2,
        box[..., 4] / length,
        box[..., 5] / length,
        along * across,
    )


def gaussian_wasserstein_distance(box_true, box_pred, stride: int = STRIDE):
    """Per-cell 2-Wasserstein distance (px) between two boxes seen as 2-D Gaussians.

    Both (..., 6) in the detector's channels: dx, dy (cells), log w, log h, sin 2yaw,
    cos 2yaw. W² = |centre difference|² + tr Σ1 + tr Σ2 - 2 tr (Σ1^½ Σ2 Σ1^½)^½, and for
    2×2 matrices tr M^½ = sqrt(tr M + 2 sqrt(det M)), with tr M = tr Σ1Σ2 and
    det M = det Σ1 det Σ2 (Yang et al., 2021, arXiv:2101.11952). Zero only for the same
    box; it grows with a shift, a resize or a turn, as the IoU falls.
    """
    p1, q1, s1, c1, det1 = _gaussian_moments(box_true)
    p2, q2, s2, c2, det2 = _gaussian_moments(box_pred)
    shift = float(stride) ** 2 * ops.sum((box_pred[..., :2] - box_true[..., :2]) ** 2, axis=-1)
    trace_product = 2 * p1 * p2 + 2 * q1 * q2 * (c1 * c2 + s1 * s2)
    cross = ops.sqrt(ops.maximum(trace_product + 2 * ops.sqrt(det1 * det2), 1e-6))
    squared = ops.maximum(shift + 2 * p1 + 2 * p2 - 2 * cross, 0.0)
    return ops.sqrt(squared + 1e-6)


def detector_loss_with_gwd(y_true, y_pred):
    """`detector_loss` plus d / (1 + d) at the cells that learn the box, d the Gaussian
    Wasserstein distance in pixels: a term that couples centre, size and angle the way the
    IoU does and keeps its steepest slope for errors of a pixel or two."""
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    mask = y_true[..., 1]
    stride = IMAGE_SIZE // y_true.shape[1]
    distance = gaussian_wasserstein_distance(y_true[..., 2:8], y_pred[..., 1:7], stride)
    cells = ops.maximum(ops.sum(mask), 1.0)
    return detector_loss(y_true, y_pred) + ops.sum(distance / (1 + distance) * mask) / cells


IOU_CELLS_PER_IMAGE = 25
"""Cells per image the rotated-IoU term reads: every cell that learns the box, for a
regression radius of at most 2 (a 5×5 block)."""


def detector_loss_with_rotated_iou(y_true, y_pred):
    """`detector_loss` plus 1 - IoU at the cells that learn the box: the score's own
    measure of a box, with the exact rotated IoU (`rotated_iou_loss.rotated_iou_tensor`).

    Only the `IOU_CELLS_PER_IMAGE` cells of each image with the highest mask are measured
    (all of the marked ones, then cells of weight 0), not all 625: the polygon work is the
    costly part of this loss.
    """
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    stride = IMAGE_SIZE // y_true.shape[1]
    cells_per_image = y_true.shape[1] * y_true.shape[2]
    flat_true = ops.reshape(y_true, (-1, cells_per_image, TARGET_CHANNELS))
    flat_pred = ops.reshape(y_pred, (-1, cells_per_image, OUTPUT_CHANNELS))
    weight, at = ops.top_k(flat_true[..., 1], k=min(IOU_CELLS_PER_IMAGE, cells_per_image))
    box_true = ops.take_along_axis(flat_true[..., 2:8], at[..., None], axis=1)
    box_pred = ops.take_along_axis(flat_pred[..., 1:7], at[..., None], axis=1)
    iou = rotated_iou_tensor(
        boxes_from_channels(ops.reshape(box_true, (-1, 6)), stride),
        boxes_from_channels(ops.reshape(box_pred, (-1, 6)), stride),
    )
    weight = ops.reshape(weight, (-1,))
    cells = ops.maximum(ops.sum(y_true[..., 1]), 1.0)
    return detector_loss(y_true, y_pred) + ops.sum((1 - iou) * weight) / cells


BOX_LOSSES = {
    "l1": detector_loss,
    "l1+gwd": detector_loss_with_gwd,
    "l1+riou": detector_loss_with_rotated_iou,
}
"""The losses a design's 'box_loss' option names; 'l1' is the default."""


def design_loss(design: dict | None = None):
    """The training loss a design asks for: its 'box_loss' option (`BOX_LOSSES`)."""
    design = design or {}
    box_loss = design.get("box_loss", "l1")
    if box_loss not in BOX_LOSSES:
        raise ValueError(f"box_loss must be one of {tuple(BOX_LOSSES)}, got {box_loss!r}")
    radius = design.get("regression_radius", REGRESSION_RADIUS)
    if box_loss == "l1+riou" and (2 * radius + 1) ** 2 > IOU_CELLS_PER_IMAGE:
        raise ValueError(
            f"box_loss 'l1+riou' measures at most {IOU_CELLS_PER_IMAGE} cells per image, "
            f"a regression_radius of at most 2; got regression_radius={radius}"
        )
    return BOX_LOSSES[box_loss]
