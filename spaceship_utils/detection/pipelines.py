"""The ways the book turns networks into boxes, and the presence gate they share.

`BaselinePipeline` is the seed's rule (a classifier decides, a regressor draws the box);
`DetectorPipeline` is chapter 7's single network, `RefinedDetectorPipeline` the same with
a second look at each box. All answer `.predict(images)`:
raw (N, 200, 200) images -> (N, 5) boxes, a NaN row where they see no ship.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spaceship_utils.core.metrics import best_presence_threshold
from spaceship_utils.core.runtime import network_outputs
from spaceship_utils.core.validation import LABEL_SIZE, check_count, check_fraction, check_images
from spaceship_utils.data.preprocessing import denormalise_labels, threshold_images
from spaceship_utils.detection.presence import PRESENCE_THRESHOLD, gate_boxes
from spaceship_utils.networks.detector_targets import decode_predictions


@dataclass
class Predictions:
    """Everything a pipeline computes for (N,) images."""

    boxes: np.ndarray
    """(N, 5) boxes in px and rad; a NaN row where the classifier says no ship."""
    presence: np.ndarray
    """(N,) probability that a ship is present."""
    raw_boxes: np.ndarray
    """(N, 5) the regressor's box for every image, whatever the classifier says."""


def gated_predictions(raw_boxes: np.ndarray, presence: np.ndarray, threshold: float) -> Predictions:
    """The `Predictions` of raw boxes (N, 5) and presence (N,) once the gate at `threshold`
    drops the boxes whose presence falls short of it."""
    presence = np.asarray(presence, dtype=np.float64)
    boxes = gate_boxes(raw_boxes, presence, threshold)
    return Predictions(boxes=boxes, presence=presence, raw_boxes=raw_boxes)


class Pipeline:
    """What every pipeline shares: input checks, the empty batch, the presence gate."""

    def __init__(self, presence_threshold: float = PRESENCE_THRESHOLD):
        self.presence_threshold = check_fraction(presence_threshold, "presence_threshold")

    @property
    def networks(self) -> tuple:
        """The Keras models this pipeline runs, in order."""
        raise NotImplementedError

    @property
    def gate_threshold(self) -> float:
        """The presence a box needs to be drawn: `presence_threshold`."""
        return self.presence_threshold

    def raw_predictions(self, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """A box (N, 5) for every checked image (N, 200, 200) and the presence probability (N,)."""
        raise NotImplementedError

    def predict_details(self, images: np.ndarray, batch_size: int = 128) -> Predictions:
        """Probabilities and boxes for raw `make_data` images (N, 200, 200) or (200, 200)."""
        images = check_images(images)
        batch_size = check_count(batch_size, "batch_size", minimum=1)
        if len(images) == 0:
            return gated_predictions(np.zeros((0, LABEL_SIZE)), np.zeros(0), self.gate_threshold)
        raw_boxes, presence = self.raw_predictions(images.astype(np.float32), batch_size)
        return gated_predictions(raw_boxes, presence, self.gate_threshold)

    def predict(self, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
        """Raw images (N, 200, 200) -> boxes (N, 5) (x, y, yaw, width, height), NaN = no ship."""
        return self.predict_details(images, batch_size).boxes


class BaselinePipeline(Pipeline):
    """The seed's two-model rule: classifier says no ship -> NaN row, else the regressor's box."""

    def __init__(self, classifier, regressor, presence_threshold: float = PRESENCE_THRESHOLD):
        super().__init__(presence_threshold)
        self.classifier = classifier
        self.regressor = regressor

    @property
    def networks(self) -> tuple:
        return (self.classifier, self.regressor)

    def raw_predictions(self, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        inputs = threshold_images(images)
        presence = network_outputs(self.classifier, inputs, batch_size)[:, 0]
        scaled = network_outputs(self.regressor, inputs, batch_size)
        return denormalise_labels(np.asarray(scaled, dtype=np.float64)), presence


class DetectorPipeline(Pipeline):
    """The one-network detector of chapter 7: heatmap presence, else the box at its peak."""

    def __init__(self, network, presence_threshold: float = PRESENCE_THRESHOLD):
        super().__init__(presence_threshold)
        self.network = network

    @property
    def networks(self) -> tuple:
        return (self.network,)

    def raw_predictions(self, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        return decode_predictions(network_outputs(self.network, images, batch_size))


def calibrated_presence_threshold(
    pipeline: Pipeline, images: np.ndarray, labels: np.ndarray
) -> tuple[float, float]:
    """The presence threshold that maximises the challenge score of `pipeline` on validation
    images (N, 200, 200) with labels (N, 5), and that score. Never choose it on test data.
    For a refined detector whose verifier votes, use `restart_tables.verifier_vote_table`: its
    restarts depend on the threshold being chosen."""
    details = pipeline.predict_details(images)
    return best_presence_threshold(details.presence, details.raw_boxes, labels)
