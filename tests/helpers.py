"""Small things many test files need: generated batches drawn once, and tiny training runs."""

from __future__ import annotations

import functools

import numpy as np

from spaceship_utils.data.generator import generate_batch

SMALL_DETECTOR = {"width": 8, "dilations": [1]}
"""A detector design small enough to train for a step in a unit test."""


@functools.cache
def _generated(count: int, seed: int, ship_probability: float) -> tuple[np.ndarray, np.ndarray]:
    images, labels = generate_batch(
        count, np.random.default_rng(seed), ship_probability=ship_probability
    )
    images.flags.writeable = labels.flags.writeable = False  # shared between tests
    return images, labels


def generated(count: int, seed: int, ships_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """`count` generated images (count, 200, 200) and float64 labels (count, 5) from `seed`,
    drawn once per test process (read-only: a test that changes them copies them)."""
    images, labels = _generated(count, seed, 1.0 if ships_only else 0.8)
    return images, labels.astype(np.float64)


def tiny_config(task: str = "regressor", recipe: bool = True, **changes):
    """A training run of `task` small enough for a unit test: one epoch of two steps of 4
    images, 8 validation samples, a detector of `SMALL_DETECTOR`'s size, on the task's
    recipe (`recipe=False`: `TrainingConfig`'s defaults, the seed's); `changes` on top."""
    from spaceship_utils.training.recipes import TrainingConfig

    settings = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 4, "validation_samples": 8}
    if task == "detector":
        settings["detector_options"] = dict(SMALL_DETECTOR)
    settings |= changes
    return TrainingConfig.recipe(task, **settings) if recipe else TrainingConfig(task, **settings)
