"""Chapter 9's tables of the refiner: the score after each pass, one view or four, and the
classifier's vote on presence, from the boxes of every pass computed once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spaceship_utils.core.metrics import (
    ap_at_iou,
    best_presence_threshold,
    scores_by_presence_threshold,
)
from spaceship_utils.core.tables import format_table
from spaceship_utils.core.validation import check_count, check_images, has_box
from spaceship_utils.detection.presence import (
    gate_boxes,
    gated_presence,
    vote_presence,
)
from spaceship_utils.detection.refined import RefinedDetectorPipeline
from spaceship_utils.evaluation.recorded import pipeline_fingerprint
from spaceship_utils.evaluation.recorded_runs import (
    inputs_digest,
    recorded_or_computed,
    refiner_runs_kind,
)


def presence_threshold_table(
    presence: np.ndarray,
    raw_boxes: np.ndarray,
    labels: np.ndarray,
    shown: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
) -> str:
    """The challenge score at the `shown` presence thresholds and at the best one, as a
    table; arguments as for `metrics.scores_by_presence_threshold` (validation data)."""
    thresholds, scores = scores_by_presence_threshold(presence, raw_boxes, labels)
    rows = [
        (f"{threshold:.2f}", f"{score:.4f}")
        for threshold, score in zip(thresholds, scores, strict=True)
        if np.isclose(shown, threshold).any()
    ]
    best, best_score = best_presence_threshold(presence, raw_boxes, labels)
    rows.append((f"best: {best:.2f}", f"{best_score:.4f}"))
    return format_table(("presence threshold", "validation score"), rows)


@dataclass(frozen=True)
class RefinerRuns:
    """The refined detector's answers on validation images, computed once for the tables
    below: its boxes (passes + 1, N, 5) after 0, 1, ... refiner passes, with one view and
    with four views of each window (no presence gate), the model's own boxes (N, 5) (its
    views, its passes), and the detector's, the classifier's (None without one) and the
    model's gated presence (N,)."""

    one_view_boxes: np.ndarray
    four_view_boxes: np.ndarray
    model_boxes: np.ndarray
    detector_presence: np.ndarray
    classifier_presence: np.ndarray | None
    presence: np.ndarray
    threshold: float


def refiner_runs(
    model: RefinedDetectorPipeline, images: np.ndarray, passes: int, recorded: bool = False
) -> RefinerRuns:
    """Run the refined detector on validation images (N, 200, 200) for 0 to `passes`
    refiner passes (at least the model's own), once with one view and once with four. With
    `recorded`, read the runs recorded for this pipeline on these images, if any, after
    replaying the first (`recorded_runs`)."""
    passes = check_count(passes, "passes")
    if passes < model.passes:
        raise ValueError(f"passes must be at least the model's {model.passes}, got {passes}")
    images = check_images(images).astype(np.float32)
    if recorded:
        return recorded_or_computed(
            refiner_runs_kind(passes),
            RefinerRuns,
            pipeline_fingerprint(model),
            inputs_digest(images),
            lambda count: refiner_runs(model, images[:count], passes),
        )
    one_view, detector_presence = model.with_settings(views=False).boxes_by_pass(images, passes)
    four_views, _ = model.with_settings(views=True).boxes_by_pass(images, passes)
    classifier = None if model.classifier is None else model.vote.classifier_presence(images)
    return RefinerRuns(
        one_view_boxes=np.stack(one_view),
        four_view_boxes=np.stack(four_views),
        model_boxes=(four_views if model.views else one_view)[model.passes],
        detector_presence=detector_presence,
        classifier_presence=classifier,
        presence=gated_presence(detector_presence, classifier),
        threshold=model.presence_threshold,
    )


def refiner_pass_table(runs: RefinerRuns, labels: np.ndarray) -> str:
    """The challenge score of `runs` against their labels (N, 5) after each refiner pass,
    with one view and with four views of each window, at the model's presence and
    threshold, as a table."""

    def score(boxes: np.ndarray) -> str:
        return f"{ap_at_iou(gate_boxes(boxes, runs.presence, runs.threshold), labels):.4f}"

    rows = [
        (count, score(one), score(four))
        for count, (one, four) in enumerate(
            zip(runs.one_view_boxes, runs.four_view_boxes, strict=True)
        )
    ]
    return format_table(("refiner passes", "one view", "four views"), rows)


def presence_vote_table(runs: RefinerRuns, labels: np.ndarray) -> str:
    """Whose presence probability to trust, for `runs` against their labels (N, 5): the
    detector's, the classifier's or their mean (the model's), each at its best threshold,
    with the model's own boxes; and, as the bound any presence decision can reach with
    those boxes, the truth."""
    if runs.classifier_presence is None:
        raise ValueError("this refined detector has no classifier to vote on presence")
    has_ship = has_box(labels)
    rows = []
    for name, presence in (
        ("detector", runs.detector_presence),
        ("classifier", runs.classifier_presence),
        ("mean of the two", vote_presence(runs.detector_presence, runs.classifier_presence)),
    ):
        threshold, score = best_presence_threshold(presence, runs.model_boxes, labels)
        accuracy = np.mean((presence >= threshold) == has_ship)
        rows.append((name, f"{threshold:.2f}", f"{accuracy:.4f}", f"{score:.4f}"))
    bound = ap_at_iou(gate_boxes(runs.model_boxes, has_ship.astype(float), 0.5), labels)
    rows.append(("the truth", "-", "1.0000", f"{bound:.4f}"))
    return format_table(
        ("presence from", "best threshold", "presence accuracy", "validation score"), rows
    )
