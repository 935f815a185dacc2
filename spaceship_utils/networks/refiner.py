"""The refiner: a small CNN that reads a window around a box (`windows.crop_windows`) and
answers how to correct it (`windows.refinement_targets`), and its loss, L1 on the
corrections plus 1 - IoU of the corrected box."""

from __future__ import annotations

import numpy as np

from spaceship_utils.core.geometry import rotated_iou
from spaceship_utils.core.runtime import import_keras
from spaceship_utils.networks.rotated_iou_loss import rotated_iou_tensor
from spaceship_utils.networks.windows import (
    CROP_SIZE,
    LOG_SIZE_RANGE,
    TARGET_COLUMNS,
    _checked_corrections,
    window_frame_boxes,
)

keras = import_keras()


layers = keras.layers


ops = keras.ops


BASIS_LAYER = "dense_basis"
"""The thin layer a factored trunk reads its `flatten` layer through (`rank` units)."""


def window_features(windows, width: int = 32, rank: int | None = None):
    """The trunk the refiner and the verifier share: windows (N, size, size, 2) -> (N,
    8·width) features. Four stride-2 3×3 convolutions (width, 2·width, 4·width, 4·width
    channels) bring a 64-pixel window to 4×4 cells; a dense layer reads them all, since
    where a feature sits in the window is the answer. With `rank`, the dense layer reads
    them through `rank` linear units first (`BASIS_LAYER`, no bias, no activation): the
    same layer with fewer weights (`low_rank`)."""
    x = windows
    for index, filters in enumerate((width, 2 * width, 4 * width, 4 * width), start=1):
        x = layers.Conv2D(
            filters, 3, strides=2, padding="same", use_bias=False, name=f"conv{index}"
        )(x)
        x = layers.BatchNormalization(name=f"norm{index}")(x)
        x = layers.ReLU(name=f"relu{index}")(x)
    x = layers.Flatten(name="flatten")(x)
    if rank is not None:
        x = layers.Dense(rank, use_bias=False, name=BASIS_LAYER)(x)
    return layers.Dense(8 * width, activation="relu", name="dense")(x)


def trunk_rank(network: keras.Model) -> int | None:
    """The rank of `network`'s trunk (the width of its `BASIS_LAYER`), None if full."""
    names = {layer.name for layer in network.layers}
    return network.get_layer(BASIS_LAYER).units if BASIS_LAYER in names else None


def build_refiner(width: int = 32, size: int = CROP_SIZE, rank: int | None = None) -> keras.Model:
    """(N, size, size, 2) windows -> (N, 6) corrections (linear outputs, float32), read
    off `window_features` (its dense layer factored to `rank`, if given)."""
    windows = keras.Input((size, size, 2), name="window")
    features = window_features(windows, width, rank)
    outputs = layers.Dense(len(TARGET_COLUMNS), dtype="float32", name="corrections")(features)
    return keras.Model(windows, outputs, name="refiner")


def _window_boxes(values):
    """`window_frame_boxes` for tensors: refiner outputs or targets (N, 6) -> (N, 5)."""
    sizes = ops.exp(ops.clip(values[:, 2:4], *LOG_SIZE_RANGE))
    turns = ops.arctan2(values[:, 5], values[:, 4]) / 2
    return ops.stack([values[:, 0], values[:, 1], turns, sizes[:, 0], sizes[:, 1]], -1)


def refiner_loss(y_true, y_pred):
    """L1 on the six outputs plus 1 - IoU between the refined and the true box.

    y_true (N, 6) from `refinement_targets`, y_pred (N, 6). Both boxes are rebuilt in the
    window's frame, where the IoU is the same as in the image.
    """
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    l1 = ops.mean(ops.sum(ops.abs(y_pred - y_true), axis=-1))
    iou = rotated_iou_tensor(_window_boxes(y_true), _window_boxes(y_pred))
    return l1 + ops.mean(1 - iou)


def refined_ious(targets: np.ndarray, corrections: np.ndarray) -> np.ndarray:
    """IoU (N,) of each refined box with its true box, from `refinement_targets` (N, 6) and
    the refiner's outputs (N, 6), both rebuilt in the window's frame, where the IoU is the
    same as in the image. `unchanged_corrections` gives the proposals' own IoU."""
    targets = _checked_corrections(targets)
    corrections = _checked_corrections(corrections, len(targets))
    return rotated_iou(window_frame_boxes(targets), window_frame_boxes(corrections))
