"""The refined detector's settings fitted on validation images, as values a recipe step
records (`chain`), by the rules the chapters' tables show: the presence threshold of the
two-way vote (chapter 9), the verifier's restart threshold (chapter 10), and the weight of
the fitted outlines with the threshold of the three-way vote (chapters 10 and 11).

Where several values score alike, the rule keeps the simplest: the first candidate, in the
order given (cheapest first), within `FIT_TOLERANCE` of the best score."""

from __future__ import annotations

import numpy as np

from spaceship_utils.core.metrics import best_presence_threshold
from spaceship_utils.core.validation import check_boxes, check_images, check_same_length
from spaceship_utils.detection.pipelines import calibrated_presence_threshold
from spaceship_utils.detection.refined import RefinedDetectorPipeline
from spaceship_utils.evaluation.outline_tables import (
    LINE_FREE_WEIGHTS,
    outline_choice,
    outline_runs,
)
from spaceship_utils.evaluation.restart_tables import restart_runs, restarted_choice

FIT_TOLERANCE = 0.001
"""A tenth of a point: scores closer than this to the best count as equal (on 4,096
validation images one image moves the score by about 0.0003, and two fits differing by
less than this are within the noise of any validation set the book uses)."""


RESTART_CANDIDATES = (0.5, 0.8, 0.9, 0.95, 0.99, 0.995)
"""The restart thresholds `fitted_restart_below` tries, the cheapest (fewest restarts) first."""


def simplest_within(candidates: tuple, scores: list[float], tolerance: float = FIT_TOLERANCE):
    """The first of `candidates` whose score is within `tolerance` of the best score."""
    if len(candidates) != len(scores) or not candidates:
        raise ValueError(f"need one score per candidate, got {len(candidates)} and {len(scores)}")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"every score must be finite, got {scores} for {candidates}")
    best = max(scores)
    return next(c for c, s in zip(candidates, scores, strict=True) if s >= best - tolerance)


def fitted_presence_threshold(
    model: RefinedDetectorPipeline, images: np.ndarray, labels: np.ndarray
) -> float:
    """The presence threshold of `model`'s vote before the verifier (the detector's and the
    classifier's mean), at its best challenge score on validation images (N, 200, 200) with
    labels (N, 5), for the refined boxes without restarts (chapter 9's rule)."""
    images, labels = _checked(images, labels)
    return calibrated_presence_threshold(model.with_settings(verifier=None), images, labels)[0]


def fitted_restart_below(
    model: RefinedDetectorPipeline,
    images: np.ndarray,
    labels: np.ndarray,
    candidates: tuple[float, ...] = RESTART_CANDIDATES,
) -> float:
    """The verifier score under which `model` restarts a box: the cheapest of `candidates`
    within `FIT_TOLERANCE` of the best challenge score on validation images (N, 200, 200)
    with labels (N, 5), at the model's own presence threshold (chapter 10's rule)."""
    images, labels = _checked(images, labels)
    runs = restart_runs(model, images)
    scores = [runs.score(restarted_choice(runs, below)[0], labels) for below in candidates]
    return float(simplest_within(candidates, scores))


def fitted_outline_settings(
    model: RefinedDetectorPipeline,
    images: np.ndarray,
    labels: np.ndarray,
    weights: tuple[float, ...] = LINE_FREE_WEIGHTS,
) -> dict[str, float | bool]:
    """How `model` judges its restarts with the generator's outline, fitted on the line-free
    log ratios: the smallest outline weight of `weights` within `FIT_TOLERANCE` of the best
    challenge score on validation images (N, 200, 200) with labels (N, 5), each weight at
    its own best threshold of the three-way vote (the detector's, the classifier's and the
    verifier's presence), and that threshold (chapter 11's rule). Returns the settings
    `RefinedDetectorPipeline.with_settings` takes: outline_weight,
    verified_presence_threshold and line_free_fits."""
    images, labels = _checked(images, labels)
    runs = restart_runs(model, images)
    outlines = outline_runs(model, images, runs, line_free=True)
    thresholds, scores = [], []
    for weight in weights:
        boxes, presence = outline_choice(runs, outlines, weight)
        threshold, score = best_presence_threshold(presence, boxes, labels)
        thresholds.append(threshold)
        scores.append(score)
    weight = simplest_within(weights, scores)
    threshold = thresholds[weights.index(weight)]
    return {
        "outline_weight": float(weight),
        "verified_presence_threshold": float(threshold),
        "line_free_fits": True,
    }


def _checked(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images, labels = check_images(images), check_boxes(labels, "labels")
    check_same_length(images=images, labels=labels)
    return images, labels
