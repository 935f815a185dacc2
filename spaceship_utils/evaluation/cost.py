"""What a model costs to run: trainable parameters, floating-point operations, CPU latency.

FLOPs count the convolutions and dense layers, the only layers whose work grows with
both input and output channels; a multiply-add counts as two operations. Normalisation,
activations, pooling and additions are left out (together a few per cent at most).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from spaceship_utils.core.runtime import import_keras
from spaceship_utils.core.validation import check_count, check_images
from spaceship_utils.networks.detector import build_detector, split_design
from spaceship_utils.training.runs import read_config

keras = import_keras()


def trainable_parameters(model: keras.Model | keras.layers.Layer) -> int:
    """Number of trainable weights (scalars) of a model or a single layer."""
    return int(sum(np.prod(weight.shape) for weight in model.trainable_weights))


def _flat_layers(model: keras.Model) -> list:
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(_flat_layers(layer))
        else:
            found.append(layer)
    return found


def layer_flops(layer) -> int:
    """Operations (2 per multiply-add) of one Conv2D or Dense layer for one image; 0 otherwise.

    Raises NotImplementedError for any other layer with a kernel, rather than miscounting it.
    """
    if isinstance(layer, keras.layers.Conv2D):
        _, height, width, filters = layer.output.shape
        kernel_h, kernel_w = layer.kernel_size
        channels_in = layer.input.shape[-1] // layer.groups
        return 2 * height * width * filters * kernel_h * kernel_w * channels_in
    if isinstance(layer, keras.layers.Dense):
        return 2 * int(np.prod(layer.kernel.shape))
    if hasattr(layer, "kernel"):
        raise NotImplementedError(f"FLOPs of {type(layer).__name__} layers are not counted here")
    return 0


def model_flops(model: keras.Model) -> int:
    """Operations (2 per multiply-add) of the convolutions and dense layers for one image."""
    return int(sum(layer_flops(layer) for layer in _flat_layers(model)))


def design_cost(design: Mapping) -> tuple[int, float]:
    """(trainable parameters, GFLOPs per image) of the detector built from `design`'s options.

    `design` is a dict like `detector.DESIGNS["fast"]` or a run's `detector_options`.
    """
    network = build_detector(**split_design(dict(design))[0])
    return trainable_parameters(network), model_flops(network) / 1e9


def design_costs(run_dirs: Mapping[str, str | Path]) -> dict[str, tuple[int, float]]:
    """{run: (trainable parameters, GFLOPs per image)} of detector runs, from the design
    each run directory's config.json records (`runs.read_config`)."""
    return {
        name: design_cost(read_config(path)["detector_options"]) for name, path in run_dirs.items()
    }


def latency_ms_per_image(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    repeats: int = 5,
) -> float:
    """Median wall-clock milliseconds per image of `predict(images)` over `repeats` calls.

    One untimed call first, so graph tracing and memory allocation are not counted.
    `images` (N, 200, 200) are passed whole; `predict` chooses its own batch size.
    """
    images = check_images(images)
    repeats = check_count(repeats, "repeats", minimum=1)
    predict(images)
    seconds = [_seconds_of(predict, images) for _ in range(repeats)]
    return 1000 * float(np.median(seconds)) / len(images)


def _seconds_of(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray) -> float:
    """Wall-clock seconds of one call `predict(images)`."""
    start = time.perf_counter()
    predict(images)
    return time.perf_counter() - start


def cost_by_stage(model: keras.Model) -> list[tuple[str, int, int]]:
    """(stage, trainable parameters, FLOPs per image) in network order.

    A stage is the part of a layer's name before its first underscore ("block3_a_conv"
    belongs to "block3"); stages with neither weights nor counted work are left out.
    """
    stages: dict[str, list[int]] = {}
    for layer in _flat_layers(model):
        parameters = trainable_parameters(layer)
        flops = layer_flops(layer)
        if parameters or flops:
            totals = stages.setdefault(layer.name.split("_")[0], [0, 0])
            totals[0] += parameters
            totals[1] += flops
    return [(stage, parameters, flops) for stage, (parameters, flops) in stages.items()]


def compare_costs(
    pipelines: Mapping[str, object], images: np.ndarray, repeats: int = 5
) -> list[dict]:
    """One row per pipeline: name, trainable parameters, GFLOPs and ms per image.

    Each pipeline has `.networks` (its Keras models) and `.predict(images)`, and may have
    `.network_passes` (how many times each network runs per image, 1 each if absent), which
    multiplies the FLOPs. Its latency is the median milliseconds per image of `predict` on
    `images` (N, 200, 200) over `repeats` rounds, in each of which every pipeline predicts
    once, in turn (after one untimed call each, as in `latency_ms_per_image`): a machine
    whose speed drifts during the measurement slows every row alike.
    """
    images = check_images(images)
    repeats = check_count(repeats, "repeats", minimum=1)
    for pipeline in pipelines.values():
        pipeline.predict(images)
    seconds = {name: [] for name in pipelines}
    for _ in range(repeats):
        for name, pipeline in pipelines.items():
            seconds[name].append(_seconds_of(pipeline.predict, images))
    rows = []
    for name, pipeline in pipelines.items():
        passes = getattr(pipeline, "network_passes", (1,) * len(pipeline.networks))
        flops = sum(model_flops(net) * k for net, k in zip(pipeline.networks, passes, strict=True))
        rows.append(
            {
                "pipeline": name,
                "parameters": sum(trainable_parameters(net) for net in pipeline.networks),
                "gflops": flops / 1e9,
                "ms_per_image": 1000 * float(np.median(seconds[name])) / len(images),
            }
        )
    return rows
