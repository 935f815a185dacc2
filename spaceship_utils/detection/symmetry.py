"""The generator's exact symmetries: the eight flips and quarter turns of the square image.

The noise, the lines and the ship's centre, yaw and shape are all drawn from distributions
that these transforms leave unchanged, so a transformed sample is another valid sample and
its label follows in closed form. With an endless generator that adds no new training data
(a flipped fresh sample is just another fresh sample), but it gives test-time averaging: a
network that is not exactly symmetric answers each view a little differently, and the
answers can be mapped back and combined.

With images indexed `image[y, x]` on an S×S grid (pixel centres 0..S-1) and the nose along
(sin yaw, cos yaw):

- flip left-right: x -> S-1-x, nose (-sin, cos), so yaw -> -yaw;
- flip up-down: y -> S-1-y, nose (sin, -cos), so yaw -> pi - yaw;
- transpose: x <-> y, nose (cos, sin), so yaw -> pi/2 - yaw.

Width and height are lengths and never change. Element k of `SYMMETRIES` applies, in this
order, a left-right flip if bit 0 of k is set, an up-down flip if bit 1 is, and a transpose
if bit 2 is.
"""

from __future__ import annotations

import numpy as np

from spaceship_utils.core.geometry import wrap_angle
from spaceship_utils.core.validation import (
    IMAGE_SIZE,
    check_boxes,
    check_count,
    check_fraction,
    check_images,
)
from spaceship_utils.detection.pipelines import Predictions
from spaceship_utils.detection.presence import PRESENCE_THRESHOLD, gate_boxes

SYMMETRIES = tuple(range(8))
"""The eight elements of the square's symmetry group; 0 is the identity."""


def transform_images(images: np.ndarray, k: int) -> np.ndarray:
    """Apply symmetry `k` to images (N, S, S); returns a new array of the same shape."""
    k = _check_symmetry(k)
    images = check_images(images, image_size=np.shape(images)[-1])
    if k & 1:
        images = images[:, :, ::-1]
    if k & 2:
        images = images[:, ::-1, :]
    if k & 4:
        images = images.transpose(0, 2, 1)
    return np.ascontiguousarray(images)


def transform_boxes(boxes: np.ndarray, k: int, image_size: int = IMAGE_SIZE) -> np.ndarray:
    """Apply symmetry `k` to boxes (N, 5) on an image_size grid; NaN rows stay NaN.

    Yaw is returned in [0, 2 pi).
    """
    k = _check_symmetry(k)
    image_size = check_count(image_size, "image_size", minimum=1)
    out = check_boxes(boxes, "boxes").copy()
    last = image_size - 1
    if k & 1:
        out[:, 0] = last - out[:, 0]
        out[:, 2] = -out[:, 2]
    if k & 2:
        out[:, 1] = last - out[:, 1]
        out[:, 2] = np.pi - out[:, 2]
    if k & 4:
        out[:, [0, 1]] = out[:, [1, 0]]
        out[:, 2] = np.pi / 2 - out[:, 2]
    out[:, 2] = wrap_angle(out[:, 2])
    return out


def inverse_symmetry(k: int) -> int:
    """The element that undoes `k` (flips are their own inverse; a transpose swaps the flips)."""
    k = _check_symmetry(k)
    if k & 4:
        # (T F_y^b F_x^a)^-1 = F_x^a F_y^b T = T F_y^a F_x^b: the flip bits trade places.
        return 4 | ((k & 1) << 1) | ((k & 2) >> 1)
    return k


def symmetry_name(k: int) -> str:
    """A short name for element `k`, listing its steps in the order they are applied."""
    k = _check_symmetry(k)
    steps = [name for bit, name in ((1, "flip x"), (2, "flip y"), (4, "transpose")) if k & bit]
    return " + ".join(steps) or "identity"


def _check_symmetry_set(symmetries) -> tuple[int, ...]:
    symmetries = tuple(_check_symmetry(k) for k in symmetries)
    if not symmetries or len(set(symmetries)) != len(symmetries):
        raise ValueError(f"symmetries must be distinct indices in 0..7, got {symmetries!r}")
    return symmetries


def _check_symmetry(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 0 <= k < 8:
        raise ValueError(f"symmetry index must be an integer in 0..7, got {k!r}")
    return int(k)


def views_of_sample(
    image: np.ndarray, box: np.ndarray, symmetries: tuple[int, ...] = SYMMETRIES
) -> tuple[np.ndarray, np.ndarray]:
    """One image (S, S) and its box (5,) under each symmetry: images (K, S, S), boxes (K, 5)."""
    images, boxes = np.asarray(image)[None], np.asarray(box, dtype=np.float64)[None]
    return (
        np.concatenate([transform_images(images, k) for k in symmetries]),
        np.concatenate([transform_boxes(boxes, k, images.shape[-1]) for k in symmetries]),
    )


def predict_with_symmetries(
    model,
    images: np.ndarray,
    presence_threshold: float = PRESENCE_THRESHOLD,
    symmetries: tuple[int, ...] = SYMMETRIES,
) -> Predictions:
    """Test-time averaging: predict on each view, map the boxes back, and combine.

    `model` has `predict_details(images) -> Predictions` (see `pretrained`); `symmetries`
    picks the views (all eight by default, one forward pass each). Presence is averaged;
    centre and size take the median; the box axis is the circular mean of 2·yaw; the nose
    direction is a majority vote. Returns `Predictions` for `images` (N, 200, 200).
    """

    presence_threshold = check_fraction(presence_threshold, "presence_threshold")
    symmetries = _check_symmetry_set(symmetries)
    images = check_images(images)
    presences, boxes = [], []
    for k in symmetries:
        details = model.predict_details(transform_images(images, k))
        presences.append(details.presence)
        boxes.append(transform_boxes(details.raw_boxes, inverse_symmetry(k), images.shape[-1]))
    presence = np.mean(presences, axis=0)
    stacked = np.stack(boxes)  # (8, N, 5)
    combined = np.median(stacked, axis=0)
    double = 2 * stacked[..., 2]
    axis = wrap_angle(np.arctan2(np.sin(double).mean(0), np.cos(double).mean(0)) / 2, np.pi)
    # Each view votes for the nose at `axis` (+1) or at `axis + pi` (-1).
    votes = np.sign(np.cos(stacked[..., 2] - axis)).sum(axis=0)
    combined[:, 2] = wrap_angle(axis + np.pi * (votes < 0))
    final = gate_boxes(combined, presence, presence_threshold)
    return Predictions(boxes=final, presence=presence, raw_boxes=combined)


class SymmetryAveraged:
    """Wraps a pipeline so that it predicts with test-time averaging over symmetries.

    It answers `predict_details` and `predict` like the pipeline it wraps (so
    `harness.evaluate_model` scores it and `cost.compare_costs` times it), at one forward
    pass per view. The presence threshold is the wrapped pipeline's own (its
    `gate_threshold`) unless given.
    """

    def __init__(
        self,
        model,
        presence_threshold: float | None = None,
        symmetries: tuple[int, ...] = SYMMETRIES,
    ):
        self.model = model
        if presence_threshold is None:
            own = getattr(model, "presence_threshold", PRESENCE_THRESHOLD)
            presence_threshold = getattr(model, "gate_threshold", own)
        self.presence_threshold = check_fraction(presence_threshold, "presence_threshold")
        self.symmetries = _check_symmetry_set(symmetries)

    @property
    def networks(self) -> list:
        """The wrapped pipeline's Keras networks (each runs once per view)."""
        return self.model.networks

    @property
    def passes(self) -> int:
        """Forward passes per image: one per view."""
        return len(self.symmetries)

    @property
    def network_passes(self) -> tuple[int, ...]:
        """How many times each of `networks` runs per image (for `cost.compare_costs`)."""
        return tuple(
            self.passes * k
            for k in getattr(self.model, "network_passes", (1,) * len(self.networks))
        )

    def predict_details(self, images: np.ndarray) -> Predictions:
        """`predict_with_symmetries` on raw images (N, 200, 200)."""
        return predict_with_symmetries(self.model, images, self.presence_threshold, self.symmetries)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Raw images (N, 200, 200) -> averaged boxes (N, 5), NaN row = no ship."""
        return self.predict_details(images).boxes


def view_averages(model, name: str) -> dict[str, SymmetryAveraged]:
    """Chapter 8's test-time averages of the pipeline `model` called `name`, by name: four
    views (as is, each flip, both flips) and all eight."""
    return {
        f"{name}, 4 views": SymmetryAveraged(model, symmetries=SYMMETRIES[:4]),
        f"{name}, 8 views": SymmetryAveraged(model),
    }
