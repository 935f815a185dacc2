"""Find a hidden spaceship in a noisy image and predict its rotated box: the book's package.

    from spaceship_utils import ap_at_iou, load_pretrained, make_data

The names in `__all__` are loaded on first use, so `import spaceship_utils` stays light:
it starts neither Keras nor TensorFlow, and importing a submodule pays for nothing else.

Modules, from the data up:

- `validation`: input checks at the public boundary, the image and label sizes.
- `data`: the faithful `make_data`, its separate layers, the fast `generate_batch`.
- `geometry`: rotated boxes: corners, the ship outline, heading, vectorised IoU.
- `metrics`: the challenge score and its relatives over whole arrays.
- `preprocessing`: the threshold, label scaling and the yaw codes.
- `tables`: `format_table`, the one plain-text table formatter.
- `label_statistics`: label tables and label-box geometry statistics (chapters 1 and 3).
- `pixel_statistics`: pixel densities and what a threshold keeps, per pixel class (chapter 2).
- `label_losses`: each label column's and each yaw code's weight in a loss (chapter 3).
- `plotting`: every figure of the book.
- `runtime`: what the code runs on, and the one place Keras is imported from.
- `detector`: chapter 7's one-network detector, its targets, loss and decoding.
- `rotated_iou_loss`: the rotated IoU as a differentiable tensor function, for a box loss.
- `refiner`: a second stage that corrects a detector's box from a turned window around it.
- `verifier`: a judge of refined boxes, so the refined detector can restart the doubtful ones.
- `outline_fit`: the generator's own outline fitted to the pixels, one more candidate box.
- `line_search`: the long noise lines of an image, found by a Hough transform.
- `line_vote`: a fourth vote on presence, the outline's likelihood once the lines are found.
- `models`: the seed's classifier and regressor, and `build_network` for every task.
- `pipelines`: networks turned into boxes, and the presence gate they share.
- `own_answers`: the boxes the refined detector asks its verifier about, to train it on.
- `symmetry`: the generator's eight exact symmetries and test-time averaging.
- `runs`: what a training run writes to its run directory, and reading it back.
- `pretrained`: the shipped, verified weights and `load_pretrained`.
- `train`: resumable training on fresh generated data (`python -m spaceship_utils.train`).
- `evaluate`: the challenge score on official samples (`python -m spaceship_utils.evaluate`).
- `cost`: trainable parameters, FLOPs and CPU latency of a model.
- `book_results`: numbers a chapter records for the book's other pages to quote.
- `quick_mode`: quick-mode copies of the chapters for the notebook tests.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .data import generate_batch, make_data, make_layers
    from .evaluate import evaluate_model
    from .geometry import rotated_iou
    from .metrics import ap_at_iou, mean_iou, sample_ious
    from .pretrained import load_pretrained

__version__ = "0.1.0"

_EXPORTS = {
    "make_data": "data",
    "make_layers": "data",
    "generate_batch": "data",
    "rotated_iou": "geometry",
    "ap_at_iou": "metrics",
    "sample_ious": "metrics",
    "mean_iou": "metrics",
    "load_pretrained": "pretrained",  # starts Keras
    "evaluate_model": "evaluate",  # starts Keras
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
