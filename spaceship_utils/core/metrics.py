"""The challenge's score and friends, over whole arrays of predictions and labels.

Per-sample semantics follow the official `score_iou`: a true negative (no ship, no box)
is left out; a box on an empty image (false positive) and a missed ship (false negative)
both count 0; otherwise the sample's value is the rotated-box IoU.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score

from spaceship_utils.core.geometry import rotated_iou, wrapped_angle_error
from spaceship_utils.core.validation import check_boxes, check_same_length, has_box

IOU_THRESHOLD = 0.7
"""A predicted box counts as a hit when its IoU with the true box is above this."""


def sample_ious(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Official per-sample values: (N, 5) predictions and labels -> (N,) IoU, 0 or NaN.

    NaN marks a true negative (no ship and no box), which the score leaves out.
    """
    predictions = check_boxes(predictions, "predictions")
    labels = check_boxes(labels, "labels")
    check_same_length(predictions=predictions, labels=labels)
    predicted = has_box(predictions)
    present = has_box(labels)
    values = np.where(predicted | present, 0.0, np.nan)
    both = predicted & present
    values[both] = rotated_iou(predictions[both], labels[both])
    return values


def ap_at_iou(
    predictions: np.ndarray, labels: np.ndarray, threshold: float = IOU_THRESHOLD
) -> float:
    """The challenge score ("AP@0.7"): the share of scored samples whose IoU > threshold.

    Scored samples are all but the true negatives. Returns NaN if none is scored.
    """
    values = sample_ious(predictions, labels)
    scored = values[~np.isnan(values)]
    return float(np.mean(scored > threshold)) if scored.size else float("nan")


def mean_iou(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Mean of the official per-sample values (true negatives left out, misses as 0)."""
    values = sample_ious(predictions, labels)
    scored = values[~np.isnan(values)]
    return float(np.mean(scored)) if scored.size else float("nan")


def heading_accuracy(
    predictions: np.ndarray, labels: np.ndarray, threshold: float = IOU_THRESHOLD
) -> tuple[float, int]:
    """How often the nose points the right way, among boxes the score counts as hits.

    The IoU ignores the nose (yaw and yaw + pi give the same rectangle), so this is a
    separate question: of the samples whose box has IoU > threshold, the share whose
    predicted yaw is within 90 degrees of the true one. Returns (share, number of hits);
    the share is NaN when there is no hit.
    """
    values = sample_ious(predictions, labels)
    hits = np.nan_to_num(values, nan=0.0) > threshold
    count = int(hits.sum())
    if count == 0:
        return float("nan"), 0
    difference = check_boxes(predictions)[hits, 2] - check_boxes(labels)[hits, 2]
    return float(np.mean(np.cos(difference) > 0)), count


def ranked_average_precision(
    confidences: np.ndarray,
    predictions: np.ndarray,
    labels: np.ndarray,
    threshold: float = IOU_THRESHOLD,
) -> float:
    """Detection-style average precision: the area under the precision-recall curve.

    Every sample proposes its box with `confidences[i]` (its probability of a ship). A
    proposal is a true positive when the image has a ship and the box's IoU > threshold;
    recall is over all images with a ship. This is *not* the challenge score; it is the
    number the detection literature calls AP, given for comparison.
    """
    confidences = np.asarray(confidences, dtype=np.float64).reshape(-1)
    predictions = check_boxes(predictions, "predictions")
    labels = check_boxes(labels, "labels")
    check_same_length(confidences=confidences, predictions=predictions, labels=labels)
    if not np.all(np.isfinite(confidences)):
        raise ValueError("confidences must be finite numbers")
    present = has_box(labels)
    if not np.any(present):
        return float("nan")
    ious = rotated_iou(predictions, labels)
    hits = present & (np.nan_to_num(ious, nan=0.0) > threshold)
    # Ships whose box never reaches the threshold cap the achievable recall below 1.
    recall_cap = hits.sum() / present.sum()
    if not np.any(hits):
        return 0.0
    return float(average_precision_score(hits, confidences) * recall_cap)


def scores_by_presence_threshold(
    presence: np.ndarray,
    raw_boxes: np.ndarray,
    labels: np.ndarray,
    candidates: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The challenge score at each candidate presence threshold: (thresholds (T,), scores (T,)).

    `presence` (N,) are probabilities, `raw_boxes` (N, 5) the box proposed for every image,
    `labels` (N, 5) the truth. A box is reported where presence >= threshold. Candidates
    default to 0.05, 0.06, ..., 0.95.
    """
    presence = np.asarray(presence, dtype=np.float64).reshape(-1)
    raw_boxes = check_boxes(raw_boxes, "raw_boxes")
    labels = check_boxes(labels, "labels")
    check_same_length(presence=presence, raw_boxes=raw_boxes, labels=labels)
    if candidates is None:
        candidates = np.round(np.linspace(0.05, 0.95, 91), 2)  # 0.37, not 0.36999999999999994
    candidates = np.asarray(candidates, dtype=np.float64).reshape(-1)
    present = has_box(labels)
    good = present & (np.nan_to_num(rotated_iou(raw_boxes, labels), nan=0.0) > IOU_THRESHOLD)
    reported = presence[None, :] >= candidates[:, None]  # (T, N)
    scored = (reported | present[None, :]).sum(axis=1)
    hits = (reported & good[None, :]).sum(axis=1)
    return candidates, np.where(scored > 0, hits / np.maximum(scored, 1), 0.0)


def best_presence_threshold(
    presence: np.ndarray,
    raw_boxes: np.ndarray,
    labels: np.ndarray,
    candidates: np.ndarray | None = None,
) -> tuple[float, float]:
    """The presence threshold that maximises the challenge score, and that score.

    Arguments as for `scores_by_presence_threshold`. A box on an empty image costs as much
    as a missed ship, so the best threshold need not be 0.5; choose it on validation data,
    never on the test samples.
    """
    thresholds, scores = scores_by_presence_threshold(presence, raw_boxes, labels, candidates)
    best = int(np.argmax(scores))
    return float(thresholds[best]), float(scores[best])


BOX_PARTS = {"centre": (0, 1), "axis": (2,), "size": (3, 4)}
"""The columns of a box (x, y, yaw, width, height) that make up each of its parts."""


def scores_with_true_parts(predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Where is the score lost? The score as predicted, and with one part of every drawn box
    replaced by the truth: {"as predicted": s, "true centre": s, "true axis": s, ...}.

    Only ship images where a box was drawn change; misses and boxes on empty images stay
    as they are. A part whose truth raises the score a lot is where the errors that matter
    are. The axis keeps the predicted nose direction, which the IoU ignores anyway.
    """
    predictions = check_boxes(predictions, "predictions")
    labels = check_boxes(labels, "labels")
    check_same_length(predictions=predictions, labels=labels)
    boxed = has_box(predictions) & has_box(labels)
    scores = {"as predicted": ap_at_iou(predictions, labels)}
    for name, columns in {**BOX_PARTS, "centre and axis": (0, 1, 2)}.items():
        helped = predictions.copy()
        for column in columns:
            helped[boxed, column] = labels[boxed, column]
        scores[f"true {name}"] = ap_at_iou(helped, labels)
    return scores


def median_box_errors(predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Median errors over ship images where a box was drawn: centre distance (px), axis
    angle (degrees, the nose ignored) and relative width and height errors (|log ratio|).

    A model that drew no box on any ship image (an untrained one, say) has no error to
    measure: every entry is then NaN.
    """
    predictions = check_boxes(predictions, "predictions")
    labels = check_boxes(labels, "labels")
    check_same_length(predictions=predictions, labels=labels)
    boxed = has_box(predictions) & has_box(labels)
    names = ("centre (px)", "axis (degrees)", "width (relative)", "height (relative)")
    if not boxed.any():
        return dict.fromkeys(names, float("nan"))
    ours, truth = predictions[boxed], labels[boxed]
    axis = wrapped_angle_error(ours[:, 2], truth[:, 2], period=np.pi)  # the nose ignored
    return {
        "centre (px)": float(np.median(np.hypot(*(ours[:, :2] - truth[:, :2]).T))),
        "axis (degrees)": float(np.degrees(np.median(axis))),
        "width (relative)": float(np.median(np.abs(np.log(ours[:, 3] / truth[:, 3])))),
        "height (relative)": float(np.median(np.abs(np.log(ours[:, 4] / truth[:, 4])))),
    }


def axis_errors_degrees(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Axis error (N,) in degrees, 0 to 90 (the nose ignored); NaN where the image holds no
    ship or no box was drawn."""
    predictions = check_boxes(predictions, "predictions")
    labels = check_boxes(labels, "labels")
    check_same_length(predictions=predictions, labels=labels)
    boxed = has_box(predictions) & has_box(labels)
    errors = np.full(len(labels), np.nan)
    errors[boxed] = np.degrees(
        wrapped_angle_error(predictions[boxed, 2], labels[boxed, 2], period=np.pi)
    )
    return errors


def axis_error_percentiles(
    predictions: np.ndarray, labels: np.ndarray, percents: tuple[float, ...] = (50, 80, 90, 95)
) -> dict[str, float]:
    """{"50 %": degrees, ...}: percentiles of the axis error (the nose ignored) over ship
    images where a box was drawn, to show the tail a median hides. NaN if none was drawn."""
    errors = axis_errors_degrees(predictions, labels)
    errors = errors[~np.isnan(errors)]
    names = [f"{percent:g} %" for percent in percents]
    if not errors.size:
        return dict.fromkeys(names, float("nan"))
    return dict(zip(names, np.percentile(errors, percents).tolist(), strict=True))


def counts_by_iou_band(ious: np.ndarray, edges: tuple[float, ...] = (0.5, 0.7)) -> dict[str, int]:
    """How many scored samples fall in each IoU band, from `sample_ious`' (N,) values.

    NaN (true negatives) are left out, as the score leaves them out. Bands: exactly 0 (a
    missed ship, a box on an empty image, or a box that misses the ship), then (0, e1],
    (e1, e2], ..., and above the last edge, which counts the hits when it is 0.7.
    """
    ious = np.asarray(ious, dtype=np.float64).reshape(-1)
    edges = tuple(float(edge) for edge in edges)
    if not edges or list(edges) != sorted(set(edges)) or not 0 < edges[0] <= edges[-1] < 1:
        raise ValueError(f"edges must rise strictly inside (0, 1), got {edges}")
    scored = ious[~np.isnan(ious)]
    if np.any((scored < 0) | (scored > 1)):
        raise ValueError("ious must lie in [0, 1] (or be NaN for a true negative)")
    counts = {"0": int(np.count_nonzero(scored == 0))}
    lower = 0.0
    for upper in edges:
        inside = (scored > lower) & (scored <= upper)
        counts[f"{lower:g} to {upper:g}"] = int(np.count_nonzero(inside))
        lower = upper
    counts[f"above {lower:g}"] = int(np.count_nonzero(scored > lower))
    return counts
