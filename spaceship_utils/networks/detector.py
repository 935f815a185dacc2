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

from spaceship_utils.core.runtime import import_keras
from spaceship_utils.core.validation import (
    IMAGE_SIZE,
)
from spaceship_utils.data.preprocessing import THRESHOLD
from spaceship_utils.networks.detector_loss import LOSS_OPTIONS
from spaceship_utils.networks.detector_targets import OUTPUT_CHANNELS, STRIDE, TARGET_OPTIONS

keras = import_keras()


layers = keras.layers


ops = keras.ops


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
