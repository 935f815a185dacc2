"""The detector's output grid: the targets it learns (`encode_targets`, a Gaussian heatmap
and the box channels of the cells near each ship) and how its outputs become boxes
(`decode_predictions`, `second_peak_predictions`)."""

from __future__ import annotations

import numpy as np

from spaceship_utils.core.geometry import wrap_angle
from spaceship_utils.core.runtime import import_keras
from spaceship_utils.core.validation import (
    IMAGE_SIZE,
    check_boxes,
    check_count,
    has_box,
)

STRIDE = 8
"""Pixels per output cell of the default detector (stride 4 is the costlier option)."""


GRID = IMAGE_SIZE // STRIDE


SIZE_REFERENCE = np.array([27.0, 40.0])
"""Typical width and height (px): the network predicts log(size / reference)."""


OUTPUT_CHANNELS = 8
"""Channels of the network's output: heatmap, dx, dy, log w, log h, sin 2yaw, cos 2yaw, heading."""


keras = import_keras()


ops = keras.ops


HEATMAP_SIGMA = 1.0
"""Standard deviation (cells) of the Gaussian bump around the true centre cell."""


TARGET_CHANNELS = 9
"""Channels of the target tensor: heatmap, centre mask, then the seven regression targets."""


REGRESSION_RADIUS = 1
"""Cells around the centre cell (in each direction) that learn the box as well: a heatmap
peak one cell off still reads a trained box. 0 trains the centre cell alone."""


TARGET_OPTIONS = ("regression_radius",)
"""Design options that shape the targets (`encode_targets`), not the network."""


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
