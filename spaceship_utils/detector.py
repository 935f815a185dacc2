"""A single fully-convolutional detector: centre heatmap plus box regression on a grid.

The network reads the raw image and its 0.8-thresholded copy as two channels, turns them
into a 25×25 feature map (stride 8: one cell per 8×8 pixels; stride 4 gives 50×50) and
predicts, for every cell:

- a heatmap logit: is the ship's centre in this cell?
- the centre's offset from the cell's corner, in cells (dx, dy; in [0, 1) at the centre
  cell, up to one cell further at its neighbours, which learn the box too),
- log width and log height (relative to `SIZE_REFERENCE`),
- the box axis as (sin 2·yaw, cos 2·yaw), which ignores the nose as the IoU does,
- a heading logit: is the nose at axis angle + pi rather than at the axis angle?

`encode_targets` turns labels into the matching (N, 25, 25, 9) target tensor and
`decode_predictions` turns the network's output into boxes and a presence probability.
`detector_loss` trains it; `detector_loss_with_gwd` adds a Gaussian Wasserstein box term,
`detector_loss_with_rotated_iou` the rotated IoU itself.
Only `keras.layers` and `keras.ops` are used, so any Keras backend can train and run it.
"""

from __future__ import annotations

import inspect

import numpy as np

from .geometry import rotated_iou, wrap_angle
from .preprocessing import THRESHOLD, wrapped_angle_error
from .rotated_iou_loss import rotated_iou_tensor
from .runtime import import_keras
from .validation import (
    IMAGE_SIZE,
    check_boxes,
    check_count,
    check_images,
    check_same_length,
    has_box,
)

keras = import_keras()
layers = keras.layers
ops = keras.ops

STRIDE = 8
"""Pixels per output cell of the default detector (stride 4 is the costlier option)."""
GRID = IMAGE_SIZE // STRIDE
SIZE_REFERENCE = np.array([27.0, 40.0])
"""Typical width and height (px): the network predicts log(size / reference)."""
HEATMAP_SIGMA = 1.0
"""Standard deviation (cells) of the Gaussian bump around the true centre cell."""
OUTPUT_CHANNELS = 8
"""Channels of the network's output: heatmap, dx, dy, log w, log h, sin 2yaw, cos 2yaw, heading."""
TARGET_CHANNELS = 9
"""Channels of the target tensor: heatmap, centre mask, then the seven regression targets."""
REGRESSION_RADIUS = 1
"""Cells around the centre cell (in each direction) that learn the box as well: a heatmap
peak one cell off still reads a trained box. 0 trains the centre cell alone."""
PRIOR_PROBABILITY = 0.01
"""Initial heatmap probability everywhere (bias of the heatmap logit), for a stable start."""


@keras.saving.register_keras_serializable(package="spaceship_utils")
class ThresholdChannels(layers.Layer):
    """(N, 200, 200) raw image -> (N, 200, 200, 2): the image and its thresholded copy."""

    def __init__(self, threshold: float = THRESHOLD, **kwargs):
        super().__init__(**kwargs)
        self.threshold = threshold

    def call(self, images):
        thresholded = ops.where(images >= self.threshold, images, ops.zeros_like(images))
        return ops.stack([images, thresholded], axis=-1)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


def _conv_norm_relu(x, filters: int, strides: int = 1, dilation: int = 1, name: str = ""):
    x = layers.Conv2D(
        filters,
        3,
        strides=strides,
        dilation_rate=dilation,
        padding="same",
        use_bias=False,
        name=f"{name}_conv",
    )(x)
    x = layers.BatchNormalization(name=f"{name}_norm")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _residual_block(x, filters: int, dilation: int, name: str):
    shortcut = x
    x = _conv_norm_relu(x, filters, dilation=dilation, name=f"{name}_a")
    x = layers.Conv2D(
        filters, 3, dilation_rate=dilation, padding="same", use_bias=False, name=f"{name}_b_conv"
    )(x)
    x = layers.BatchNormalization(name=f"{name}_b_norm")(x)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, x]))


@keras.saving.register_keras_serializable(package="spaceship_utils")
class SpaceToDepth(layers.Layer):
    """(N, H, W, C) -> (N, H/b, W/b, b·b·C): every b×b block of pixels becomes one cell.

    Nothing is lost or computed: the next convolution sees all pixels of a block at once,
    at a b·b times smaller cost than the same convolution at full resolution.
    """

    def __init__(self, block: int, **kwargs):
        super().__init__(**kwargs)
        self.block = block

    def call(self, x):
        b = self.block
        _, height, width, channels = x.shape
        x = ops.reshape(x, (-1, height // b, b, width // b, b, channels))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, height // b, width // b, b * b * channels))

    def get_config(self):
        return {**super().get_config(), "block": self.block}


def _bottleneck_block(x, filters: int, dilation: int, name: str):
    """1×1 down to filters/2, dilated 3×3, 1×1 back up, plus the shortcut."""
    shortcut = x
    x = layers.Conv2D(filters // 2, 1, use_bias=False, name=f"{name}_reduce_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_reduce_norm")(x)
    x = layers.ReLU(name=f"{name}_reduce_relu")(x)
    x = _conv_norm_relu(x, filters // 2, dilation=dilation, name=f"{name}_spatial")
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_expand_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_expand_norm")(x)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, x]))


def build_detector(
    width: int = 64,
    dilations: tuple[int, ...] = (1, 2, 4, 8, 2, 4),
    stride: int = STRIDE,
    block: str = "bottleneck",
    stem: str = "space_to_depth_8",
    inputs: str = "raw_and_thresholded",
) -> keras.Model:
    """Raw images (N, 200, 200) -> (N, 200/stride, 200/stride, 8) per-cell outputs (float32).

    The defaults are the shipped design (`DESIGNS["fast"]`). stride 8: a space-to-depth
    stem reaches a 25×25 grid, with 8×8 pixels per cell and one convolution
    ('space_to_depth_8'), or 4×4 pixels per cell, a convolution and a stride-2
    convolution ('space_to_depth_4'). stride 4: two stride-2 convolutions bring the image
    to a 50×50 grid, where every layer costs four times as much (the stem is ignored).
    Residual blocks ('basic': two 3×3 convolutions; 'bottleneck': 1×1, 3×3, 1×1 at half
    width) with growing dilation widen the view to the whole ship without shrinking the map.
    """
    if stride not in (4, 8):
        raise ValueError(f"stride must be 4 or 8, got {stride!r}")
    if block not in ("basic", "bottleneck"):
        raise ValueError(f"block must be 'basic' or 'bottleneck', got {block!r}")
    if stem not in ("space_to_depth_4", "space_to_depth_8"):
        raise ValueError(f"stem must be 'space_to_depth_4' or 'space_to_depth_8', got {stem!r}")
    if inputs not in ("raw_and_thresholded", "raw"):
        raise ValueError(f"inputs must be 'raw_and_thresholded' or 'raw', got {inputs!r}")
    images = keras.Input((IMAGE_SIZE, IMAGE_SIZE), name="image")
    if inputs == "raw":
        x = layers.Reshape((IMAGE_SIZE, IMAGE_SIZE, 1), name="raw_only")(images)
    else:
        # float32 even under mixed precision, so the 0.8 threshold is exact.
        x = ThresholdChannels(name="raw_and_thresholded", dtype="float32")(images)
    if stride == 4:
        x = _conv_norm_relu(x, 24, strides=2, name="stem1")
        x = _conv_norm_relu(x, 48, strides=2, name="stem2")
        x = _conv_norm_relu(x, width, name="stem3")
    elif stem == "space_to_depth_4":
        x = SpaceToDepth(4, name="space_to_depth")(x)
        x = _conv_norm_relu(x, 48, name="stem1")
        x = _conv_norm_relu(x, width, strides=2, name="stem2")
    else:
        x = SpaceToDepth(8, name="space_to_depth")(x)
        x = _conv_norm_relu(x, width, name="stem1")
    residual = _residual_block if block == "basic" else _bottleneck_block
    for index, dilation in enumerate(dilations, start=1):
        x = residual(x, width, dilation, name=f"block{index}")
    prior = float(np.log(PRIOR_PROBABILITY / (1 - PRIOR_PROBABILITY)))
    bias = np.zeros(OUTPUT_CHANNELS, dtype=np.float32)
    bias[0] = prior
    outputs = layers.Conv2D(
        OUTPUT_CHANNELS,
        1,
        dtype="float32",
        name="head",
        bias_initializer=keras.initializers.Constant(bias),
    )(x)
    return keras.Model(images, outputs, name="detector")


DESIGNS = {
    "stride4": {
        "stride": 4,
        "width": 64,
        "block": "basic",
        "dilations": (1, 2, 4, 8, 1, 2, 4, 8),
    },
    "fast": {
        "stride": 8,
        "width": 64,
        "block": "bottleneck",
        "stem": "space_to_depth_8",
        "dilations": (1, 2, 4, 8, 2, 4),
    },
}
"""Named detector designs: the chapter 7 notes' stride-4 network and the cheap stride-8 one
measured in benchmarks/bench_detector_designs.py. `split_design` separates a design's
network options from its target options."""

TARGET_OPTIONS = ("regression_radius",)
"""Design options that shape the targets (`encode_targets`), not the network."""
LOSS_OPTIONS = ("box_loss",)
"""Design options that choose the training loss (`design_loss`), not the network."""


def split_design(design: dict) -> tuple[dict, dict]:
    """A design's options -> (`build_detector` arguments, `encode_targets` arguments).

    The stride belongs to both: the network's grid and the targets' grid must agree. The
    loss options (`LOSS_OPTIONS`) belong to neither: `design_loss` reads them.
    """
    apart = {*TARGET_OPTIONS, *LOSS_OPTIONS}
    known = set(inspect.signature(build_detector).parameters) | apart
    unknown = sorted(set(design) - known)
    if unknown:
        raise ValueError(f"unknown detector design option(s) {unknown}; known: {sorted(known)}")
    network = {key: value for key, value in design.items() if key not in apart}
    targets = {key: design[key] for key in TARGET_OPTIONS if key in design}
    targets["stride"] = design.get("stride", STRIDE)
    return network, targets


def encode_targets(
    labels: np.ndarray, stride: int = STRIDE, regression_radius: int = REGRESSION_RADIUS
) -> np.ndarray:
    """Labels (N, 5) -> targets (N, G, G, 9) float32 for `detector_loss`, G = 200 / stride.

    Channel 0 is a Gaussian bump (peak exactly 1 at the centre cell). Channel 1 marks the
    cells that learn the box: the centre cell and its neighbours up to `regression_radius`
    cells away. Channels 2-8 hold, at those cells, dx, dy (the centre measured from the
    cell's corner, in cells), log w, log h, sin 2yaw, cos 2yaw and the heading bit. A row
    of NaNs (no ship) gives all zeros.
    """
    labels = check_boxes(labels, "labels")
    regression_radius = check_count(regression_radius, "regression_radius", minimum=0)
    grid = _grid(stride)
    targets = np.zeros((len(labels), grid, grid, TARGET_CHANNELS), dtype=np.float32)
    ships = np.flatnonzero(has_box(labels))
    if ships.size == 0:
        return targets
    boxes = labels[ships]
    flat = boxes[:, 3:5] <= 0
    if np.any(flat):
        row = int(ships[np.flatnonzero(flat.any(axis=1))[0]])
        raise ValueError(f"labels[{row}] has a zero width or height: a ship's box cannot be flat")
    outside = np.any((boxes[:, :2] < 0) | (boxes[:, :2] > IMAGE_SIZE), axis=1)
    if np.any(outside):
        row = int(ships[np.flatnonzero(outside)[0]])
        raise ValueError(
            f"labels[{row}] puts the ship's centre at {labels[row, :2].tolist()}, outside the "
            f"{IMAGE_SIZE}×{IMAGE_SIZE} image: no grid cell can learn it"
        )
    centre = boxes[:, :2] / stride  # in cells
    cell = np.clip(np.floor(centre), 0, grid - 1).astype(int)
    centres = np.arange(grid)
    dx2 = (centres[None, :] - cell[:, :1]) ** 2  # (M, grid) along x
    dy2 = (centres[None, :] - cell[:, 1:]) ** 2  # (M, grid) along y
    bump = np.exp(-(dy2[:, :, None] + dx2[:, None, :]) / (2 * HEATMAP_SIGMA**2))
    targets[ships, :, :, 0] = bump
    axis = 2 * boxes[:, 2]
    shape = np.column_stack(
        [
            np.log(boxes[:, 3:5] / SIZE_REFERENCE),
            np.sin(axis),
            np.cos(axis),
            heading_bits(boxes[:, 2]),
        ]
    )
    steps = range(-regression_radius, regression_radius + 1)
    for step_y in steps:
        for step_x in steps:
            at = cell + [step_x, step_y]
            inside = np.all((at >= 0) & (at < grid), axis=1)
            rows, (x, y) = ships[inside], at[inside].T
            targets[rows, y, x, 1] = 1.0
            targets[rows, y, x, 2:4] = centre[inside] - at[inside]
            targets[rows, y, x, 4:] = shape[inside]
    return targets


def outputs_from_targets(targets: np.ndarray, confidence: float = 8.0) -> np.ndarray:
    """The (N, G, G, 8) network output that agrees exactly with targets (N, G, G, 9).

    Logits of +/-`confidence` stand for certainty at the centre cell and elsewhere. Decoding
    this output must give back the labels: the round trip the book and the tests check.
    """
    targets = np.asarray(targets, dtype=np.float32)
    _check_grid_tensor(targets, "targets", TARGET_CHANNELS)
    outputs = np.zeros(targets.shape[:-1] + (OUTPUT_CHANNELS,), dtype=np.float32)
    outputs[..., 0] = np.where(targets[..., 0] >= 1.0, confidence, -confidence)
    outputs[..., 1:7] = targets[..., 2:8]
    outputs[..., 7] = np.where(targets[..., 8] > 0, confidence, -confidence)
    return outputs


def _grid(stride: int) -> int:
    if stride not in (4, 8):
        raise ValueError(f"stride must be 4 or 8, got {stride!r}")
    return IMAGE_SIZE // stride


def _check_grid_tensor(array: np.ndarray, name: str, channels: int) -> None:
    grids = (_grid(4), _grid(8))
    if array.ndim != 4 or array.shape[1] != array.shape[2] or array.shape[1] not in grids:
        raise ValueError(
            f"{name} must have shape (N, G, G, {channels}) with G in {grids}, got {array.shape}"
        )
    if array.shape[3] != channels:
        raise ValueError(f"{name} must have {channels} channels, got shape {array.shape}")


def heading_bits(yaw_rad: np.ndarray) -> np.ndarray:
    """1 where the nose points at axis angle + pi, 0 where at the axis angle (in [0, pi))."""
    yaw_rad = wrap_angle(np.asarray(yaw_rad, dtype=np.float64))
    return (yaw_rad >= np.pi).astype(np.float64)


def decode_predictions(outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, G, G, 8) network outputs -> boxes (N, 5) and presence probability (N,).

    The box is read at the cell with the highest heatmap logit; the presence probability
    is that cell's sigmoid. No thresholding here: the caller decides what counts as a ship.
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    _check_grid_tensor(outputs, "outputs", OUTPUT_CHANNELS)
    if len(outputs) == 0:
        return np.zeros((0, 5)), np.zeros(0)
    grid = outputs.shape[1]
    stride = IMAGE_SIZE / grid
    count = len(outputs)
    flat = outputs[..., 0].reshape(count, -1)
    best = flat.argmax(axis=1)
    gy, gx = np.divmod(best, grid)
    at = outputs[np.arange(count), gy, gx]  # (N, 8)
    axis = wrap_angle(np.arctan2(at[:, 5], at[:, 6]) / 2, np.pi)
    yaw = wrap_angle(axis + np.pi * (at[:, 7] > 0))
    boxes = np.column_stack(
        [
            (gx + at[:, 1]) * stride,
            (gy + at[:, 2]) * stride,
            yaw,
            np.exp(at[:, 3]) * SIZE_REFERENCE[0],
            np.exp(at[:, 4]) * SIZE_REFERENCE[1],
        ]
    )
    presence = 1 / (1 + np.exp(-flat[np.arange(count), best]))
    return boxes, presence


def second_peak_predictions(outputs: np.ndarray, clearance: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, G, G, 8) network outputs -> the boxes (N, 5) and presence probabilities (N,)
    that `decode_predictions` reads at the best heatmap cell more than `clearance` cells
    from the peak along x or y: the detector's second guess, somewhere else in the image."""
    outputs = np.array(outputs, dtype=np.float64)  # a copy: the peak's square is masked
    _check_grid_tensor(outputs, "outputs", OUTPUT_CHANNELS)
    clearance = check_count(clearance, "clearance", minimum=0)
    grid = outputs.shape[1]
    if 2 * clearance + 1 >= grid:
        raise ValueError(
            f"clearance must leave cells outside the peak's square on a {grid}x{grid} grid, "
            f"got {clearance}"
        )
    if len(outputs) == 0:
        return decode_predictions(outputs)
    gy, gx = np.divmod(outputs[..., 0].reshape(len(outputs), -1).argmax(axis=1), grid)
    cells = np.arange(grid)
    near_y = np.abs(cells[None, :] - gy[:, None]) <= clearance  # (N, G)
    near_x = np.abs(cells[None, :] - gx[:, None]) <= clearance
    heatmap = outputs[..., 0]  # a view: masking it masks the outputs
    heatmap[near_y[:, :, None] & near_x[:, None, :]] = -np.inf
    return decode_predictions(outputs)


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


def boxes_from_channels(channels, stride: int = STRIDE):
    """(M, 6) box channels (dx, dy, log w, log h, sin 2yaw, cos 2yaw) -> (M, 5) boxes in px.

    The centre is measured from the cell's corner (the IoU does not care where the cell is);
    yaw is the box axis, in (-pi/2, pi/2]. Where (sin, cos) is shorter than 0.1 the axis is
    too unsure to steer: it takes no gradient there (the L1 term lengthens it first).
    """
    sin, cos = channels[:, 4], channels[:, 5]
    unsure = sin**2 + cos**2 < 0.01
    steady = ops.stop_gradient(ops.arctan2(sin, cos))
    steerable = ops.arctan2(  # a harmless input where unsure, so no 0/0 in the gradient
        ops.where(unsure, ops.zeros_like(sin), sin), ops.where(unsure, ops.ones_like(cos), cos)
    )
    log_size = ops.clip(channels[:, 2:4], -3.0, 3.0)  # keeps exp finite early in training
    return ops.stack(
        [
            channels[:, 0] * float(stride),
            channels[:, 1] * float(stride),
            ops.where(unsure, steady, steerable) / 2,
            ops.exp(log_size[:, 0]) * float(SIZE_REFERENCE[0]),
            ops.exp(log_size[:, 1]) * float(SIZE_REFERENCE[1]),
        ],
        axis=-1,
    )


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


def round_trip_errors(labels: np.ndarray, stride: int = STRIDE) -> dict[str, float]:
    """Encode ship labels (N, 5), decode the outputs that match the targets exactly, and
    return the largest errors: position and size (px), yaw (rad), and the smallest IoU."""
    decoded, _ = decode_predictions(outputs_from_targets(encode_targets(labels, stride)))
    return {
        "position (px)": float(np.abs(decoded[:, :2] - labels[:, :2]).max()),
        "size (px)": float(np.abs(decoded[:, 3:] - labels[:, 3:]).max()),
        "yaw (rad)": float(wrapped_angle_error(decoded[:, 2], labels[:, 2]).max()),
        "smallest IoU": float(rotated_iou(decoded, labels).min()),
    }


def memorise_batch(
    images: np.ndarray,
    labels: np.ndarray,
    steps: int,
    learning_rate: float = 1e-3,
    seed: int = 0,
    network: keras.Model | None = None,
) -> tuple[keras.Model, list[float]]:
    """Train a fresh detector (or `network`) on one fixed batch for `steps` Adam steps.

    The sanity check before a long run: if encoding, loss and decoding fit together, the
    network can at least memorise a handful of images (N, 200, 200) with labels (N, 5).
    Returns the network and the loss at each step (computed before that step's update).
    """
    images = check_images(images)
    labels = check_boxes(labels, "labels")
    check_same_length(images=images, labels=labels)
    steps = check_count(steps, "steps", minimum=1)
    keras.utils.set_random_seed(seed)
    network = build_detector() if network is None else network
    network.compile(keras.optimizers.Adam(learning_rate), loss=detector_loss)
    stride = IMAGE_SIZE // network.output_shape[1]  # the targets follow the network's grid
    history = network.fit(
        images.astype(np.float32),
        encode_targets(labels, stride),
        epochs=steps,
        batch_size=len(images),
        verbose=0,
    )
    return network, [float(loss) for loss in history.history["loss"]]


def fit_report(
    network: keras.Model, images: np.ndarray, labels: np.ndarray, training: bool
) -> tuple[str, np.ndarray]:
    """How well `network` fits a batch: a line with each image's IoU and presence, and the
    decoded boxes (N, 5). `training` runs batch normalisation on the batch's own statistics
    (and nudges its running averages) instead of using the running averages."""
    outputs = keras.ops.convert_to_numpy(network(images.astype(np.float32), training=training))
    boxes, presence = decode_predictions(outputs)
    ious = rotated_iou(boxes, labels)
    mode = "training mode" if training else "inference mode"
    line = (
        f"{mode:>14}: IoU {np.array2string(ious, precision=2)}, mean {ious.mean():.2f}; "
        f"presence {np.array2string(presence, precision=2)}"
    )
    return line, boxes


def refresh_batch_statistics(network: keras.Model, images: np.ndarray) -> None:
    """Set every batch-normalisation layer's running mean and variance to those of `images`.

    One forward pass in training mode with momentum 0, weights untouched. After it, the
    network in inference mode computes on `images` (N, 200, 200) what it computes in
    training mode: the way to show that a gap between the two modes is only the lag of the
    running statistics.
    """
    images = check_images(images).astype(np.float32)
    norms = [layer for layer in network.layers if isinstance(layer, layers.BatchNormalization)]
    saved = [layer.momentum for layer in norms]
    try:
        for layer in norms:
            layer.momentum = 0.0
        network(images, training=True)
    finally:
        for layer, momentum in zip(norms, saved, strict=True):
            layer.momentum = momentum
