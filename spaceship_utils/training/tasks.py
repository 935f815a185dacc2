"""The networks the book trains, one `Task` each: what it is built from, what it reads
and learns, its loss, how a run of it is judged and the recipe it trains with.

The training loop (`loop`), the batches (`batches`) and the command line read everything
task-specific from `TASKS`; adding a network to train is adding an entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from spaceship_utils.core.metrics import IOU_THRESHOLD, ap_at_iou
from spaceship_utils.core.runtime import import_keras, network_outputs
from spaceship_utils.core.validation import has_box
from spaceship_utils.data.generator import SHIP_PROBABILITY
from spaceship_utils.data.preprocessing import (
    denormalise_labels,
    normalise_labels,
    threshold_images,
)
from spaceship_utils.detection.presence import gate_boxes
from spaceship_utils.networks.detector import DESIGNS, build_detector, split_design
from spaceship_utils.networks.detector_loss import design_loss
from spaceship_utils.networks.detector_targets import decode_predictions, encode_targets
from spaceship_utils.networks.refiner import build_refiner, refined_ious, refiner_loss
from spaceship_utils.networks.seed import build_classifier, build_regressor
from spaceship_utils.networks.verifier import (
    build_verifier,
    start_verifier_from,
    verification_targets,
    verifier_proposals,
    verifier_windows,
)
from spaceship_utils.networks.windows import crop_windows, perturbed_proposals, refinement_targets

keras = import_keras()

Examples = Callable[..., tuple[np.ndarray, np.ndarray]]
"""(images (N, 200, 200), labels (N, 5), design, rng) -> (inputs, targets) of a task."""


@dataclass(frozen=True)
class Task:
    """Everything task-specific about training one network."""

    name: str
    build: Callable[..., keras.Model]
    """(**design) -> a fresh, uncompiled network (the detector's design, or the
    `design_options` of another network)."""
    examples: Examples
    """What the network reads and learns from generated images and their labels."""
    loss: Callable[[dict | None], Callable | str]
    """design -> the training loss (a Keras loss name or function)."""
    answers: str
    """What the network outputs: "probability" (judged by accuracy), "boxes" (by the
    challenge score of `boxes_from_outputs`) or "corrections" (by the refined boxes' share
    over the IoU threshold)."""
    monitor: tuple[str, Callable]
    """The validation number that picks a run's kept weights, and min or max."""
    ship_share: float
    """Share of training images with a ship."""
    recipe: dict
    """What the task trains with unless told otherwise, on top of `TrainingConfig`'s
    defaults."""
    boxes: Callable[[np.ndarray], np.ndarray] | None = None
    """Raw outputs (N, ...) -> the boxes (N, 5) they stand for (NaN = no ship), for a task
    that answers boxes."""
    load_initial_weights: Callable[[keras.Model, str], None] | None = None
    """How a run starts from a weights file (None: `model.load_weights`)."""
    starts_from: str = "run of the same task and design"
    """Whose weights file a run of this task can start from, for error messages."""
    takes_design: bool = False
    """Whether the network is built from a design (`TrainingConfig.detector_options`)."""
    design_options: tuple[str, ...] = ()
    """The options a network that takes no design is built with instead (its builder's
    keywords, given in `TrainingConfig.detector_options`): the refiner's and the
    verifier's `rank`."""
    reads_hard_examples: bool = False
    """Whether a run can train on the refined detector's own answers (`hard_examples`)."""
    starts_clean: bool = False
    """Whether a fresh run's first windows come from noise-free images (`CLEAN_WINDOWS`)."""

    def start_from(self, model: keras.Model, path: str) -> None:
        """Load the weights file `path` into a fresh `model` of this task."""
        if self.load_initial_weights is None:
            model.load_weights(path)
        else:
            self.load_initial_weights(model, path)


def classifier_examples(images, labels, design=None, rng=None):
    """The seed's classifier: thresholded images (N, 200, 200) and presence (N, 1)."""
    return threshold_images(images), has_box(labels).astype(np.float32)[:, None]


def regressor_examples(images, labels, design=None, rng=None):
    """The seed's regressor: thresholded images and boxes scaled to [0, 1] (N, 5)."""
    return threshold_images(images), normalise_labels(labels).astype(np.float32)


def detector_examples(images, labels, design=None, rng=None):
    """The detector: raw images and (N, G, G, 9) targets shaped by its `design` (its stride
    and regression radius; None: the defaults)."""
    return images.astype(np.float32), encode_targets(labels, **split_design(design or {})[1])


def refiner_examples(images, labels, design=None, rng=None):
    """The refiner: windows (N, 64, 64, 2) around proposals drawn with `rng`
    (`windows.perturbed_proposals`) and their `refinement_targets` (N, 6)."""
    if rng is None:
        raise ValueError("the refiner's proposals are random: pass rng")
    proposals = perturbed_proposals(labels, rng)
    return crop_windows(images, proposals), refinement_targets(proposals, labels)


def verifier_examples(images, labels, design=None, rng=None):
    """The verifier: windows around boxes drawn with `rng` (`verifier.verifier_proposals`)
    and whether each box scores (N, 1)."""
    if rng is None:
        raise ValueError("the verifier's boxes are random: pass rng")
    boxes = verifier_proposals(labels, rng)
    return verifier_windows(images, boxes), verification_targets(boxes, labels)


def regressor_boxes(outputs: np.ndarray) -> np.ndarray:
    """The regressor's scaled outputs (N, 5) as boxes in px and rad."""
    return denormalise_labels(np.asarray(outputs, dtype=np.float64))


def detector_boxes(outputs: np.ndarray) -> np.ndarray:
    """The detector's outputs (N, G, G, 9) as boxes, gated at the seed's presence rule."""
    boxes, presence = decode_predictions(outputs)
    return gate_boxes(boxes, presence)


def _probability_loss(design: dict | None = None) -> str:
    return "binary_crossentropy"


SEED_EPOCHS = {"classifier": 60, "regressor": 200}
"""Epochs of 1000 steps in the seed's train.py (batch 8): 480,000 and 1,600,000 images."""

_AVERAGED = {"batch_size": 32, "schedule": "hold_cosine", "ema_momentum": 0.999}
"""The networks of chapters 7, 9 and 10 train on batches of 32 with a moving average of
their weights."""

TASKS: dict[str, Task] = {
    "classifier": Task(
        "classifier",
        build=build_classifier,
        examples=classifier_examples,
        loss=_probability_loss,
        answers="probability",
        monitor=("val_loss", min),
        ship_share=SHIP_PROBABILITY,
        recipe={"epochs": SEED_EPOCHS["classifier"]},
    ),
    "regressor": Task(
        "regressor",
        build=build_regressor,
        examples=regressor_examples,
        loss=lambda design=None: "mse",
        answers="boxes",
        monitor=("val_loss", min),
        ship_share=1.0,
        recipe={"epochs": SEED_EPOCHS["regressor"], "seed": 1},
        boxes=regressor_boxes,
    ),
    "detector": Task(
        "detector",
        build=lambda **design: build_detector(**split_design(design)[0]),
        examples=detector_examples,
        loss=design_loss,
        answers="boxes",
        monitor=("val_ap07", max),
        ship_share=SHIP_PROBABILITY,
        recipe={"epochs": 60, **_AVERAGED, "detector_options": DESIGNS["fast"]},
        boxes=detector_boxes,
        takes_design=True,
    ),
    "refiner": Task(
        "refiner",
        build=build_refiner,
        examples=refiner_examples,
        loss=lambda design=None: refiner_loss,
        answers="corrections",
        monitor=("val_ap07", max),
        ship_share=1.0,
        recipe={"epochs": 120, **_AVERAGED},
        starts_clean=True,
        design_options=("rank",),
    ),
    "verifier": Task(
        "verifier",
        build=build_verifier,
        examples=verifier_examples,
        loss=_probability_loss,
        answers="probability",
        monitor=("val_loss", min),
        ship_share=SHIP_PROBABILITY,
        recipe={"epochs": 60, **_AVERAGED, "seed": 2},
        load_initial_weights=start_verifier_from,
        starts_from="verifier or refiner run (a refiner's trunk only)",
        reads_hard_examples=True,
        design_options=("rank",),
    ),
}
"""The networks the book trains: the seed's two (chapters 4 and 5), chapter 7's detector,
its refiner (chapter 9) and the verifier that judges the refiner's boxes (chapter 10). The
recipes: the seed's for its two networks (the regressor draws its images from seed 1, so the
two never train on the same images), the shipped runs of chapter 7 for the detector
(1,920,000 images) and of chapter 9 for the refiner's first cycle (3,840,000 windows). The
shipped refiner then trained a second cycle from those weights (`initial_weights`, seed 1,
80 epochs, peak rate 3e-4: chapter 9). The verifier trains on seed 2 from the shipped
refiner's trunk (pass the refiner's file as `initial_weights`); the shipped verifier then
trained a second cycle from those weights, and a third from the second's, with half of every
batch the refined detector's own answers (`hard_examples`, chapter 10)."""


def task_named(name: str) -> Task:
    """The `Task` called `name`, or a ValueError listing the tasks there are."""
    if name not in TASKS:
        raise ValueError(f"task must be one of {tuple(TASKS)}, got {name!r}")
    return TASKS[name]


def build_network(task: str, **design) -> keras.Model:
    """A fresh, uncompiled network for `task`; `design` is the detector's."""
    return task_named(task).build(**design)


def task_inputs_and_targets(
    task: str,
    images: np.ndarray,
    labels: np.ndarray,
    design: dict | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """What the network of `task` reads and learns from raw images (N, 200, 200) and their
    labels (N, 5): the task's `examples` (`rng` draws the refiner's and the verifier's
    boxes)."""
    return task_named(task).examples(images, labels, design, rng)


def task_loss(task: str, design: dict | None = None) -> Callable | str:
    """The training loss: the seed's BCE and MSE, the detector's own (its `design`'s), the
    refiner's L1 plus 1 - IoU, the verifier's BCE."""
    return task_named(task).loss(design)


def boxes_from_outputs(outputs: np.ndarray, task: str) -> np.ndarray:
    """The (N, 5) boxes a regressor's or detector's raw outputs stand for (NaN = no ship)."""
    boxes = task_named(task).boxes
    if boxes is None:
        raise ValueError(f"a {task} does not output boxes")
    return boxes(outputs)


def validation_metrics(
    model: keras.Model,
    task: str,
    inputs: np.ndarray,
    targets: np.ndarray,
    labels: np.ndarray | None,
    design: dict | None = None,
) -> dict[str, float]:
    """val_loss (the training loss on the validation set), then by what the task answers:
    val_accuracy for a probability (no raw `labels` needed), val_ap07 for boxes or
    corrections (every validation window of the refiner holds a ship)."""
    answers = task_named(task).answers
    outputs = network_outputs(model, inputs, batch_size=128)
    loss_fn = keras.losses.get(task_loss(task, design))
    loss = float(keras.ops.convert_to_numpy(keras.ops.mean(loss_fn(targets, outputs))))
    metrics = {"val_loss": loss}
    if answers == "probability":
        metrics["val_accuracy"] = float(np.mean((outputs >= 0.5) == (targets >= 0.5)))
    elif answers == "corrections":
        metrics["val_ap07"] = float(np.mean(refined_ious(targets, outputs) > IOU_THRESHOLD))
    else:
        metrics["val_ap07"] = ap_at_iou(boxes_from_outputs(outputs, task), labels)
    return metrics
