"""Several refined detectors that differ only in settings (`with_settings`), scored on the
same images with the work they share done once: how chapter 12 scores each stage."""

from __future__ import annotations

import numpy as np

from spaceship_utils.core.validation import LABEL_SIZE, check_count, check_images
from spaceship_utils.detection.candidates import chosen_candidates
from spaceship_utils.detection.pipelines import Predictions, gated_predictions
from spaceship_utils.detection.refined import RefinedDetectorPipeline

SHARED_SETTINGS = ("network", "refiner", "classifier", "passes", "views", "restart_views")
"""What the refined detectors of `variant_predictions` must share: networks and passes."""


VERIFIED_SETTINGS = ("verifier", "restart_below")
"""What those of them with a verifier must share too (the others have none)."""


def variant_predictions(
    variants: dict[str, RefinedDetectorPipeline],
    images: np.ndarray,
    batch_size: int = 128,
    refined: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Predictions]:
    """What each of several refined detectors that differ only in their verifier being
    there, their presence thresholds, outline weight, line-free fits and line vote (copies
    of one, with some settings changed) predicts on raw images (N, 200, 200): each one's
    `predict_details`, with the work they share done once. The detector, classifier and
    refiner run once; the restarts (and the outline fits of each kind some variant fits)
    run once on every image any variant restarts; each variant then picks its own
    candidates and gates its own presence. Chapter 12 scores the stages of the pipeline on
    10,000 images this way. Given `refined`, the refined boxes (N, 5) and presence (N,)
    before the verifier votes that their refined detector (without a verifier) answered on
    these images already, the refiner and the classifier do not run again, and the
    detector only on the images restarted, for its proposals."""
    if not variants:
        raise ValueError("variants is empty: give at least one refined detector")
    for name, model in variants.items():
        if not isinstance(model, RefinedDetectorPipeline):
            raise TypeError(f"variant {name!r} is a {type(model).__name__}, not a refined detector")
    first = next(iter(variants.values()))
    verified = {name: model for name, model in variants.items() if model.verifier is not None}
    for name, model in variants.items():
        checks = [(setting, first) for setting in SHARED_SETTINGS]
        if name in verified:
            checks += [(setting, next(iter(verified.values()))) for setting in VERIFIED_SETTINGS]
        for setting, reference in checks:
            if getattr(model, setting) != getattr(reference, setting):
                raise ValueError(f"variant {name!r} has another {setting} than the others")
    images = check_images(images).astype(np.float32)
    batch_size = check_count(batch_size, "batch_size", minimum=1)
    if len(images) == 0:
        return {name: model.predict_details(images) for name, model in variants.items()}
    if refined is None:
        boxes_by_pass, detector_presence = first.boxes_by_pass(images, first.passes, batch_size)
        presence = first.vote.presence(images, detector_presence, batch_size)
        proposals, boxes = boxes_by_pass[0], boxes_by_pass[-1]
    else:
        boxes, presence = (np.asarray(known, dtype=np.float64) for known in refined)
        if boxes.shape != (len(images), LABEL_SIZE) or presence.shape != (len(images),):
            raise ValueError(
                f"refined must be boxes ({len(images)}, {LABEL_SIZE}) and presence "
                f"({len(images)},) for the {len(images)} images, got {boxes.shape} and "
                f"{presence.shape}"
            )
        proposals = None
    answers = {name: (boxes, presence) for name in variants}
    if verified:
        answers.update(
            verified_variant_answers(verified, images, proposals, boxes, presence, batch_size)
        )
    return {
        name: gated_predictions(*answers[name], model.gate_threshold)
        for name, model in variants.items()
    }


def verified_variant_answers(
    variants: dict[str, RefinedDetectorPipeline],
    images: np.ndarray,
    proposals: np.ndarray | None,
    boxes: np.ndarray,
    presence: np.ndarray,
    batch_size: int = 128,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For `variant_predictions`: the boxes (N, 5) and presence (N,) of each variant with a
    verifier, from the detector's proposals (N, 5; None: the detector runs on the images
    restarted), the refined boxes (N, 5) and the presence (N,) before the verifier votes,
    on images (N, 200, 200)."""
    model = next(iter(variants.values()))
    scores = np.asarray(model.restarts.verifier_scores(images, boxes, batch_size), dtype=np.float64)
    doubted = scores < model.restart_below
    restarted = {name: doubted & v.vote.restart_eligible(presence) for name, v in variants.items()}
    union = np.flatnonzero(np.any(list(restarted.values()), axis=0))
    fitted = {}  # line_free_fits -> (candidates, their scores, log ratios)
    if union.size:
        restarted_proposals = (
            model.proposals(images[union], batch_size)[0] if proposals is None else proposals[union]
        )
        starts, start_scores = model.restarts.scored_starts(
            images[union], restarted_proposals, boxes[union], scores[union], batch_size
        )
        fitting = {v.line_free_fits for v in variants.values() if v.outline_weight is not None}
        for line_free in sorted(fitting):
            fitted[line_free] = model.restarts.outline_candidates(
                images[union], starts, start_scores, batch_size, line_free
            )
    answers = {}
    for name, variant in variants.items():
        kept, kept_scores = np.array(boxes), scores.copy()
        chosen_images = np.flatnonzero(restarted[name][union])
        if chosen_images.size:
            if variant.outline_weight is None:  # the starts alone, by the verifier's scores
                candidates, candidate_scores, log_ratios = starts, start_scores, None
            else:
                candidates, candidate_scores, log_ratios = fitted[variant.line_free_fits]
            kept[union[chosen_images]], kept_scores[union[chosen_images]] = chosen_candidates(
                candidates[:, chosen_images],
                candidate_scores[:, chosen_images],
                None if log_ratios is None else log_ratios[:, chosen_images],
                variant.outline_weight,
            )
        answers[name] = (
            kept,
            variant.vote.voted_presence(images, kept, presence, kept_scores)
            if variant.vote.verifier_votes
            else presence,
        )
    return answers
