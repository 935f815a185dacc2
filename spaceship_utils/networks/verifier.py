"""A judge for the refined detector's boxes: how likely is this box to score?

The refiner (`refiner`) corrects a box, but it cannot say when its answer is wrong: on
about one ship in twenty it settles on an axis 20° or more from the true one, as calmly as
it settles on the right one. Started again from turned axes, it finds a scoring box for
many of those ships; what is missing is a way to tell which start to keep. The verifier
reads a window around a finished box and answers the probability that the box's IoU with
the true ship exceeds 0.7 (no ship in the image: 0). Its window is fitted to the box
(`verifier_windows`): each axis is scaled by the box's own side, so every box fills the
same square and a box too wide, too narrow, too long or too short for its ship looks it.
(The refiner's window, scaled by the larger side, shows the box's centre, axis and length
but not its width: a verifier on it learned less, chapter 10.)

It trains like the refiner, on fresh generated images without running the detector:
boxes to judge come from the true ones with errors, half of them as small as the refined
boxes' (`VERIFIER_NOISE`), half as large as the refiner's training proposals
(`windows.perturbed_proposals`), and images without a ship get the box of another ship of
the batch somewhere else. Its trunk is the refiner's (`refiner.window_features`), and a
verifier run starts from a trained refiner's trunk (`copy_refiner_trunk`). The shipped
verifier then trained a second and a third cycle with half of every batch the refined
detector's own answers, the boxes it is asked about in use (`own_answers`, chapter 10).
"""

from __future__ import annotations

import warnings

import numpy as np

from spaceship_utils.core.geometry import rotated_iou
from spaceship_utils.core.metrics import IOU_THRESHOLD
from spaceship_utils.core.runtime import import_keras
from spaceship_utils.core.validation import IMAGE_SIZE, check_boxes, check_same_length, has_box
from spaceship_utils.data.generator import draw_ship_labels
from spaceship_utils.networks.refiner import (
    BASIS_LAYER,
    build_refiner,
    trunk_rank,
    window_features,
)
from spaceship_utils.networks.windows import CROP_SIZE, crop_windows, perturbed_proposals

keras = import_keras()


layers = keras.layers


VERIFIER_NOISE = (1.0, 0.04, 0.05)
"""Standard deviations of the small errors (centre px, axis rad, log size): about the
refined boxes' median errors on chapter 9's validation ships (0.9 px, 0.9°, 4 %), a little
wider."""


SMALL_ERROR_SHARE = 0.5
"""Share of ship boxes drawn with `VERIFIER_NOISE` (a tenth of them wild: the axis anywhere,
twice the errors, see `windows.perturbed_proposals`); the rest are drawn like the refiner's
training proposals."""


def verifier_proposals(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Boxes (N, 5) to judge for images with labels (N, 5) (NaN rows: no ship).

    Ships: `SMALL_ERROR_SHARE` of them with errors of `VERIFIER_NOISE`, the others drawn
    like the refiner's training proposals. Images without a ship: the box of a ship drawn
    from the batch (from the generator's size ranges if the batch has none), its centre
    anywhere in the image and its yaw the borrowed one (or any, if drawn).
    """
    labels = check_boxes(labels, "labels")
    ships = has_box(labels)
    boxes = np.empty_like(labels)
    small = ships & (rng.uniform(size=len(labels)) < SMALL_ERROR_SHARE)
    large = ships & ~small
    if small.any():
        boxes[small] = perturbed_proposals(labels[small], rng, noise=VERIFIER_NOISE, wild_share=0.1)
    if large.any():
        boxes[large] = perturbed_proposals(labels[large], rng)
    empty = ~ships
    if empty.any() and ships.any():
        borrowed = labels[rng.choice(np.flatnonzero(ships), size=empty.sum())]
        borrowed[:, :2] = rng.uniform(0, IMAGE_SIZE - 1, size=(empty.sum(), 2))
        boxes[empty] = borrowed
    elif empty.any():
        boxes[empty] = _made_up_boxes(empty.sum(), rng)
    return boxes


def _made_up_boxes(count: int, rng: np.random.Generator) -> np.ndarray:
    """Boxes (count, 5) of ships drawn as the generator draws them (`generator.draw_ship_labels`),
    their centres anywhere in the image."""
    boxes = draw_ship_labels(count, rng)[:, :5]
    boxes[:, :2] = rng.uniform(0, IMAGE_SIZE - 1, size=(count, 2))
    return boxes


def verification_targets(boxes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Whether each box (N, 5) scores against its label (N, 5): (N, 1) float32, 1 where
    the IoU exceeds `IOU_THRESHOLD`, 0 elsewhere and where there is no ship."""
    boxes = check_boxes(boxes, "boxes")
    labels = check_boxes(labels, "labels")
    check_same_length(boxes=boxes, labels=labels)
    if not has_box(boxes).all():
        raise ValueError("every image needs a box to judge: no NaN rows in boxes")
    scores = np.zeros(len(boxes), dtype=np.float32)
    ships = has_box(labels)
    scores[ships] = rotated_iou(boxes[ships], labels[ships]) > IOU_THRESHOLD
    return scores[:, None]


def verifier_windows(images: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The windows (N, CROP_SIZE, CROP_SIZE, 2) the verifier judges boxes (N, 5) on images
    (N, 200, 200) by: fitted to each box (`windows.crop_windows` with `fit_box`), so a box
    too wide or too narrow for its ship looks it."""
    return crop_windows(images, boxes, fit_box=True)


def build_verifier(width: int = 32, size: int = CROP_SIZE, rank: int | None = None) -> keras.Model:
    """(N, size, size, 2) windows -> (N, 1) probability (float32) that the window's box
    scores, read off the refiner's trunk (`window_features`, its dense layer factored to
    `rank`, if given)."""
    windows = keras.Input((size, size, 2), name="window")
    features = window_features(windows, width, rank)
    score = layers.Dense(1, activation="sigmoid", dtype="float32", name="score")(features)
    return keras.Model(windows, score, name="verifier")


TRUNK_LAYERS = ("conv1", "norm1", "conv2", "norm2", "conv3", "norm3", "conv4", "norm4", "dense")
"""The layers a verifier shares with the refiner (`refiner.window_features`), and
`refiner.BASIS_LAYER` too when the trunk's dense layer is factored (`rank`)."""


def start_verifier_from(verifier: keras.Model, weights: str) -> None:
    """Load a `.weights.h5` file into `verifier`: a verifier's file whole (a second training
    cycle), or a refiner's file, its trunk only (`copy_refiner_trunk`); either of the
    verifier's rank."""
    candidate = build_verifier(rank=trunk_rank(verifier))
    with warnings.catch_warnings():  # Keras warns about a refiner's file before it fails
        warnings.simplefilter("ignore")
        try:
            candidate.load_weights(weights)
        except ValueError:
            copy_refiner_trunk(verifier, weights)
            return
    verifier.set_weights(candidate.get_weights())


def copy_refiner_trunk(verifier: keras.Model, refiner_weights: str) -> None:
    """Load a refiner's `.weights.h5` file (of the verifier's rank) and copy its trunk
    (`TRUNK_LAYERS`) into `verifier`; the verifier's own output layer keeps its fresh
    weights."""
    rank = trunk_rank(verifier)
    refiner = build_refiner(rank=rank)
    try:
        refiner.load_weights(refiner_weights)
    except ValueError as error:
        raise ValueError(
            f"{refiner_weights} holds neither a verifier nor a refiner of rank {rank} "
            "(None: full), the rank of the verifier it should start"
        ) from error
    for name in TRUNK_LAYERS + (() if rank is None else (BASIS_LAYER,)):
        verifier.get_layer(name).set_weights(refiner.get_layer(name).get_weights())
