"""Find a hidden spaceship in a noisy image and predict its rotated box: the book's package.

    from spaceship_utils import ap_at_iou, load_pretrained, make_data

The names in `__all__` are loaded on first use, so `import spaceship_utils` stays light:
it starts neither Keras nor TensorFlow, and importing a submodule pays for nothing else.

Folders, from the bottom up (each imports only from those above it in this list):

- `core`: input checks, rotated-box geometry, the challenge score, tables, the runtime.
- `data`: the challenge's generator, preprocessing, the generator's pixel model.
- `studies`: the statistics of chapters 1-3 (labels, pixels, label losses).
- `networks`: every network, its targets and its loss (the seed's two, the detector,
  the refiner, the verifier).
- `detection`: networks turned into boxes: the pipelines, the refined detector's stages
  (restarts, the choice among candidates, presence votes), outline fits, line search,
  symmetries.
- `training`: the task registry, run settings, batches, the resumable loop, run folders,
  hard examples.
- `pretrained`: the shipped, verified weights and `load_pretrained`.
- `evaluation`: the challenge score on official samples, the chapters' tables, cost,
  the settings fitted on validation images.
- `plotting`: every figure of the book, by chapter.
- `chain`: every step that makes the shipped pipeline from nothing, as data, and their runner.

The commands: `python -m spaceship_utils.train` (train a network),
`python -m spaceship_utils.evaluate` (score one, or `--record` the book's pipelines) and
`python -m spaceship_utils.own_answers` (collect the refined detector's own answers for its
verifier) and `python -m spaceship_utils.reproduce` (retrain the shipped pipeline from
nothing, step by step, resumable).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .core.geometry import rotated_iou
    from .core.metrics import ap_at_iou, mean_iou, sample_ious
    from .data.generator import generate_batch, make_data, make_layers
    from .evaluation.harness import evaluate_model
    from .pretrained import load_pretrained

__version__ = "0.1.0"

_EXPORTS = {
    "make_data": "data.generator",
    "make_layers": "data.generator",
    "generate_batch": "data.generator",
    "rotated_iou": "core.geometry",
    "ap_at_iou": "core.metrics",
    "sample_ious": "core.metrics",
    "mean_iou": "core.metrics",
    "load_pretrained": "pretrained",  # starts Keras
    "evaluate_model": "evaluation.harness",  # starts Keras
}
"""Each top-level name and the submodule it comes from, imported when first asked for."""

__all__ = [
    "make_data",
    "make_layers",
    "generate_batch",
    "rotated_iou",
    "ap_at_iou",
    "sample_ious",
    "mean_iou",
    "load_pretrained",
    "evaluate_model",
]


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
