"""Detector designs by training cost: parameters, GFLOPs, training and inference speed.

Run on an idle machine (pause any training run first: it resumes from its checkpoint):

    python benchmarks/bench_detector_designs.py > benchmarks/detector-designs-DATE.txt

`--only TEXT` times just the candidates whose name contains TEXT (next to the seed's
classifier, as always), e.g. `--only shipped` for the shipped design and its variants.

Every candidate and the seed's classifier are timed in this one process, on the same
pre-generated batch, so the ratio to the seed classifier is what to compare across
machines. Training speed is measured with `train_on_batch` (pure compute, batch 32);
inference is `predict` on 64 images. Each speed is the median of three timed rounds.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from spaceship_utils.core.runtime import describe_machine, import_keras
from spaceship_utils.data.generator import generate_batch
from spaceship_utils.evaluation.cost import model_flops, trainable_parameters
from spaceship_utils.networks.detector import DESIGNS
from spaceship_utils.training.loop import build_and_compile
from spaceship_utils.training.recipes import TrainingConfig
from spaceship_utils.training.tasks import task_inputs_and_targets

keras = import_keras()

EIGHT_BLOCKS = (1, 2, 4, 8, 1, 2, 4, 8)
"""Dilations of the eight-block trunks; the shipped design keeps six, DESIGNS["fast"]."""
FOUR_PIXEL_STEM = dict(stride=8, stem="space_to_depth_4")
CANDIDATES = {
    "stride 4, basic 64 x8 (chapter 7 notes)": DESIGNS["stride4"],
    "stride 8, 4x4 stem, basic 64 x8": FOUR_PIXEL_STEM
    | dict(width=64, block="basic", dilations=EIGHT_BLOCKS),
    **{
        f"stride 8, 4x4 stem, bottleneck {width} x8": FOUR_PIXEL_STEM
        | dict(width=width, block="bottleneck", dilations=EIGHT_BLOCKS)
        for width in (64, 96, 128)
    },
    "stride 8, 8x8 stem, bottleneck 64 x8": DESIGNS["fast"] | dict(dilations=EIGHT_BLOCKS),
    "stride 8, 8x8 stem, bottleneck 64 x6 (shipped)": DESIGNS["fast"],
    "stride 8, 8x8 stem, bottleneck 96 x6": DESIGNS["fast"] | dict(width=96),
    # Chapter 7's ablations that change the cost per image, and chapter 9's rotated IoU loss:
    "shipped, 4x4 stem": DESIGNS["fast"] | FOUR_PIXEL_STEM,
    "shipped, raw image only": DESIGNS["fast"] | dict(inputs="raw"),
    "shipped, l1+gwd box loss": DESIGNS["fast"] | dict(box_loss="l1+gwd"),
    "shipped, l1+riou box loss": DESIGNS["fast"] | dict(box_loss="l1+riou"),
}
BATCH = 32
TIMED_IMAGES = 640
ROUNDS = 3


def training_images_per_second(config: TrainingConfig) -> float:
    """Median images/s over `ROUNDS` timed rounds of `TIMED_IMAGES`, after 3 warm-up steps."""
    model = build_and_compile(config)
    images, labels = generate_batch(BATCH, np.random.default_rng(0))
    x, y = task_inputs_and_targets(config.task, images, labels, config.detector_options)
    for _ in range(3):
        model.train_on_batch(x, y)
    steps = TIMED_IMAGES // BATCH
    speeds = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        speeds.append(steps * BATCH / (time.perf_counter() - start))
    return float(np.median(speeds))


def inference_ms_per_image(model: keras.Model) -> float:
    images = generate_batch(64, np.random.default_rng(1))[0]
    model.predict(images, batch_size=64, verbose=0)
    start = time.perf_counter()
    for _ in range(3):
        model.predict(images, batch_size=64, verbose=0)
    return 1000 * (time.perf_counter() - start) / (3 * 64)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="time only candidates whose name has this")
    only = parser.parse_args(argv).only
    candidates = {name: options for name, options in CANDIDATES.items() if only in name}
    if not candidates:
        parser.error(f"no candidate name contains {only!r}; names: {list(CANDIDATES)}")
    print(
        f"# {time.strftime('%Y-%m-%d')}, {describe_machine()}, Python {platform.python_version()}"
    )
    print(f"# Keras {keras.__version__} on {keras.backend.backend()}, batch {BATCH}")
    seed_speed = training_images_per_second(TrainingConfig(task="classifier", batch_size=BATCH))
    print(f"seed classifier: {seed_speed:.1f} training images/s (ratio 1.00)")
    print(f"{'design':<48}{'params':>10}{'GFLOPs':>8}{'train img/s':>13}{'ratio':>7}{'ms/img':>8}")
    for name, options in candidates.items():
        config = TrainingConfig(task="detector", batch_size=BATCH, detector_options=options)
        network = build_and_compile(config)  # the loss options change the step, not the network
        speed = training_images_per_second(config)
        print(
            f"{name:<48}{trainable_parameters(network):>10,}{model_flops(network) / 1e9:>8.3f}"
            f"{speed:>13.1f}{speed / seed_speed:>7.2f}{inference_ms_per_image(network):>8.1f}",
            flush=True,
        )
    print(f"# KERAS_BACKEND={os.environ.get('KERAS_BACKEND', 'tensorflow')}")


if __name__ == "__main__":
    main()
