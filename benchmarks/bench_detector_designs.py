"""Detector designs by training cost: parameters, GFLOPs, training and inference speed.

Run on an idle machine (pause any training run first: it resumes from its checkpoint):

    python benchmarks/bench_detector_designs.py > benchmarks/detector-designs-DATE.txt

Every candidate and the seed's classifier are timed in this one process, on the same
pre-generated batch, so the ratio to the seed classifier is what to compare across
machines. Training speed is measured with `train_on_batch` (pure compute, batch 32);
inference is `predict` on 64 images.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from spaceship_utils.cost import model_flops, trainable_parameters
from spaceship_utils.data import generate_batch
from spaceship_utils.runtime import describe_machine, import_keras
from spaceship_utils.train import TrainingConfig, build_and_compile, task_inputs_and_targets

keras = import_keras()

CANDIDATES = {
    "stride 4, basic 64 x8 (chapter 7 notes)": dict(stride=4, width=64, block="basic"),
    "stride 8, basic 64 x8": dict(stride=8, width=64, block="basic"),
    "stride 8, bottleneck 64 x8": dict(stride=8, width=64, block="bottleneck"),
    "stride 8, bottleneck 96 x8": dict(stride=8, width=96, block="bottleneck"),
    "stride 8, bottleneck 128 x8": dict(stride=8, width=128, block="bottleneck"),
    "stride 8, 8x8 stem, bottleneck 64 x8": dict(
        stride=8, width=64, block="bottleneck", stem="space_to_depth_8"
    ),
    "stride 8, 8x8 stem, bottleneck 64 x6": dict(
        stride=8,
        width=64,
        block="bottleneck",
        stem="space_to_depth_8",
        dilations=(1, 2, 4, 8, 2, 4),
    ),
    "stride 8, 8x8 stem, bottleneck 96 x6": dict(
        stride=8,
        width=96,
        block="bottleneck",
        stem="space_to_depth_8",
        dilations=(1, 2, 4, 8, 2, 4),
    ),
}
BATCH = 32
TIMED_IMAGES = 640


def training_images_per_second(config: TrainingConfig) -> float:
    model = build_and_compile(config)
    images, labels = generate_batch(BATCH, np.random.default_rng(0))
    x, y = task_inputs_and_targets(config.task, images, labels, config.detector_options)
    for _ in range(3):
        model.train_on_batch(x, y)
    steps = TIMED_IMAGES // BATCH
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * BATCH / (time.perf_counter() - start)


def inference_ms_per_image(model: keras.Model) -> float:
    images = generate_batch(64, np.random.default_rng(1))[0]
    model.predict(images, batch_size=64, verbose=0)
    start = time.perf_counter()
    for _ in range(3):
        model.predict(images, batch_size=64, verbose=0)
    return 1000 * (time.perf_counter() - start) / (3 * 64)


def main() -> None:
    print(
        f"# {time.strftime('%Y-%m-%d')}, {describe_machine()}, Python {platform.python_version()}"
    )
    print(f"# Keras {keras.__version__} on {keras.backend.backend()}, batch {BATCH}")
    seed_speed = training_images_per_second(TrainingConfig(task="classifier", batch_size=BATCH))
    print(f"seed classifier: {seed_speed:.1f} training images/s (ratio 1.00)")
    print(f"{'design':<42}{'params':>10}{'GFLOPs':>8}{'train img/s':>13}{'ratio':>7}{'ms/img':>8}")
    for name, options in CANDIDATES.items():
        config = TrainingConfig(task="detector", batch_size=BATCH, detector_options=options)
        network = build_and_compile(config)
        speed = training_images_per_second(config)
        print(
            f"{name:<42}{trainable_parameters(network):>10,}{model_flops(network) / 1e9:>8.3f}"
            f"{speed:>13.1f}{speed / seed_speed:>7.2f}{inference_ms_per_image(network):>8.1f}",
            flush=True,
        )
    print(f"# KERAS_BACKEND={os.environ.get('KERAS_BACKEND', 'tensorflow')}")


if __name__ == "__main__":
    main()
