"""Score a model the way the challenge does, on fresh samples from the official generator.

    python -m spaceship_utils.evaluate --model baseline --samples 10000 --seed 0

Samples come from the faithful `make_data` after `np.random.seed(seed)`, in chunks, so
10,000 images never sit in memory at once. A few images of each kind are kept for the
galleries: good (IoU > 0.7), bad (0.55-0.65) and ugly (< 0.2).
"""

from __future__ import annotations

import argparse
import copy
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from sklearn.metrics import classification_report

from .data import make_data
from .geometry import rotated_iou
from .label_statistics import outline_leaves_image
from .line_vote import fit_line_vote, line_vote_features
from .metrics import (
    IOU_THRESHOLD,
    ap_at_iou,
    axis_errors_degrees,
    best_presence_threshold,
    counts_by_iou_band,
    heading_accuracy,
    ranked_average_precision,
    sample_ious,
    scores_by_presence_threshold,
)
from .pipelines import (
    Predictions,
    RefinedDetectorPipeline,
    best_scored_boxes,
    fitted_outline_boxes,
    gate_boxes,
    gated_presence,
    judged_scores,
    variant_predictions,
    vote_can_reach,
    vote_presence,
    with_one_more_vote,
)
from .pretrained import PRETRAINED_MODELS, WeightsError, load_pretrained
from .tables import format_table
from .validation import IMAGE_SIZE, check_count, check_images, has_box

PUBLISHED_SCORE = 0.46879
PUBLISHED_MEAN_IOU = 0.66012
"""The seed write-up's own numbers for this pipeline (10,000 samples, official scorer)."""

GALLERY_RANGES = {"good": (IOU_THRESHOLD, 1.0), "bad": (0.55, 0.65), "ugly": (0.0, 0.2)}
"""IoU ranges of the galleries, inclusive at both ends except 'good', which needs IoU > 0.7."""


@dataclass
class Gallery:
    """Up to `size` samples whose IoU fell in one range, in the order they were drawn."""

    images: list = field(default_factory=list)
    true_boxes: list = field(default_factory=list)
    predicted_boxes: list = field(default_factory=list)
    ious: list = field(default_factory=list)


@dataclass
class Evaluation:
    """Per-sample results of one evaluation run and the timings of its stages (seconds)."""

    labels: np.ndarray
    boxes: np.ndarray
    raw_boxes: np.ndarray
    presence: np.ndarray
    ious: np.ndarray
    galleries: dict[str, Gallery]
    seconds: dict[str, float]

    @property
    def has_ship(self) -> np.ndarray:
        return has_box(self.labels)

    @property
    def predicted_ship(self) -> np.ndarray:
        return has_box(self.boxes)

    @property
    def score(self) -> float:
        """The challenge score: share of scored samples with IoU > 0.7."""
        scored = self.ious[~np.isnan(self.ious)]
        return float(np.mean(scored > IOU_THRESHOLD))

    @property
    def standard_error(self) -> float:
        """Binomial standard error of `score`, sqrt(p (1 - p) / n) over the n scored samples:
        how far the score of another set of samples of the same size would typically lie."""
        return _binomial_error(self.score, int(np.sum(~np.isnan(self.ious))))

    @property
    def mean_iou(self) -> float:
        """The challenge's per-sample values averaged: IoU, misses and false boxes count 0."""
        return float(np.nanmean(self.ious))

    @property
    def mean_iou_where_boxed(self) -> float:
        """Mean IoU over the ship images where the model drew a box: how good its boxes are."""
        boxed = self.has_ship & self.predicted_ship
        return float(np.mean(self.ious[boxed])) if boxed.any() else float("nan")

    @property
    def classifier_accuracy(self) -> float:
        return float(np.mean(self.has_ship == self.predicted_ship))

    @property
    def heading_accuracy(self) -> tuple[float, int]:
        """Share of hits (IoU > 0.7) whose nose points the right way, and the number of hits."""
        return heading_accuracy(self.boxes, self.labels)

    @property
    def ranked_ap(self) -> float:
        """Detection-style AP of the regressor's boxes ranked by the classifier's probability."""
        return ranked_average_precision(self.presence, self.raw_boxes, self.labels)

    def classification_report(self) -> str:
        return classification_report(
            self.has_ship,
            self.predicted_ship,
            digits=3,
            target_names=["no ship", "ship"],
            zero_division=0,
        )

    def splits(self) -> dict[str, list[dict]]:
        """`score_by_group` rows for each split of `ship_groups`: by size, edge and yaw."""
        return {
            name: score_by_group(self.ious, groups)
            for name, groups in ship_groups(self.labels).items()
        }

    def summary(self) -> str:
        """The numbers of this evaluation, one per line, with the time each stage took."""
        total = sum(self.seconds.values())
        heading, hits = self.heading_accuracy
        return (
            f"samples: {len(self.labels)} ({int(self.has_ship.sum())} with a ship)\n"
            f"score (AP@0.7, official): {self.score:.4f} "
            f"(standard error {self.standard_error:.4f})\n"
            f"mean IoU (official, misses count 0): {self.mean_iou:.4f}\n"
            f"mean IoU over ship images with a box: {self.mean_iou_where_boxed:.4f}\n"
            f"ranked AP@0.7 (precision-recall area): {self.ranked_ap:.4f}\n"
            f"presence accuracy (ship or no ship right): {self.classifier_accuracy:.4f}\n"
            f"nose direction right on hits: {heading:.4f} ({hits} boxes with IoU > 0.7)\n"
            f"time: {total:.1f} s (generation {self.seconds['generation']:.1f} s, "
            f"inference {self.seconds['inference']:.1f} s, scoring {self.seconds['scoring']:.1f} s)"
        )


def official_samples(count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` samples from the global stream: images (count, 200, 200) float32, labels float64."""
    images = np.empty((count, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    labels = np.empty((count, 5))
    for index in range(count):
        images[index], labels[index] = make_data()
    return images, labels


def evaluate_model(
    model, samples: int = 10_000, seed: int = 0, chunk_size: int = 500, gallery_size: int = 8
) -> Evaluation:
    """Score `model.predict_details` on `samples` official samples after np.random.seed(seed)."""
    evaluations = evaluate_predictions(
        lambda images, _: {"model": model.predict_details(images)},
        samples,
        seed,
        chunk_size,
        gallery_size,
    )
    return evaluations["model"]


REUSE_CHECKED = 32
"""How many of the first images `evaluate_variants` refines again to check that the
evaluation it was given to reuse is that of its variants' refined detector."""


def evaluate_variants(
    variants: dict[str, RefinedDetectorPipeline],
    samples: int = 10_000,
    seed: int = 0,
    chunk_size: int = 500,
    gallery_size: int = 8,
    refined: Evaluation | None = None,
) -> dict[str, Evaluation]:
    """`evaluate_model` of refined detectors that differ only in their verifier, presence
    thresholds, outline weight, line-free fits and line vote, on the same official samples,
    through `pipelines.variant_predictions`: their shared work is done once (their
    inference seconds are those of all of them together). Given `refined`, the
    `evaluate_model` of their refined detector without its verifier on the same samples
    and seed, its refined boxes and presence are reused rather than computed again (the
    first `REUSE_CHECKED` images are, to check that they match)."""
    if refined is not None and len(refined.labels) != samples:
        raise ValueError(f"refined scored {len(refined.labels)} samples, not {samples}")

    def predict(images: np.ndarray, chunk: slice) -> dict[str, Predictions]:
        if refined is None or chunk.start == chunk.stop:  # the first call: no sample yet
            return variant_predictions(variants, images)
        known = (refined.raw_boxes[chunk], refined.presence[chunk])
        if chunk.start == 0:
            check_reused_refinement(next(iter(variants.values())), images, *known)
        return variant_predictions(variants, images, refined=known)

    evaluations = evaluate_predictions(predict, samples, seed, chunk_size, gallery_size)
    if refined is not None:
        labels = next(iter(evaluations.values())).labels
        if not np.array_equal(labels, refined.labels, equal_nan=True):
            raise ValueError(f"refined scored other samples than seed {seed} draws")
    return evaluations


def check_reused_refinement(
    model: RefinedDetectorPipeline, images: np.ndarray, boxes: np.ndarray, presence: np.ndarray
) -> None:
    """A ValueError unless `model`'s refined boxes and presence (before any verifier) on the
    first `REUSE_CHECKED` images (N, 200, 200) are the boxes (N, 5) and presence (N,) given,
    up to float rounding: two loads of the same weights can differ by a thousandth of a
    pixel after the refiner's passes, so each box must overlap its own with an IoU above
    0.99, each presence lie within 0.001 of its own."""
    count = min(REUSE_CHECKED, len(images))
    boxes_by_pass, detector_presence = model.boxes_by_pass(images[:count], model.passes)
    own_presence = model.presence(images[:count], detector_presence)
    overlaps = rotated_iou(boxes_by_pass[-1], boxes[:count])
    if not (np.all(overlaps > 0.99) and np.allclose(own_presence, presence[:count], atol=1e-3)):
        raise ValueError(
            "refined is not what these variants' refined detector answers on these samples "
            f"(smallest IoU of its first {count} boxes with their own {np.min(overlaps):.3f}, "
            f"largest presence difference {np.max(np.abs(own_presence - presence[:count])):.3g}):"
            " evaluate it with evaluate_model on the same samples and seed, without its verifier"
        )


def evaluate_predictions(
    predict: Callable[[np.ndarray, slice], dict[str, Predictions]],
    samples: int,
    seed: int,
    chunk_size: int,
    gallery_size: int,
) -> dict[str, Evaluation]:
    """Score the predictions `predict` returns, by name, for raw images (N, 200, 200) and
    where they lie among the samples (a slice), on `samples` official samples after
    np.random.seed(seed), `chunk_size` at a time. A first, untimed call gets one blank image
    and an empty slice: building the predict functions is not inference time."""
    samples = check_count(samples, "samples", minimum=1)
    chunk_size = check_count(chunk_size, "chunk_size", minimum=1)
    names = list(predict(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32), slice(0, 0)))
    np.random.seed(seed)
    seconds = {"generation": 0.0, "inference": 0.0, "scoring": 0.0}
    fields = ("labels", "boxes", "raw_boxes", "presence", "ious")
    parts = {name: {key: [] for key in fields} for name in names}
    galleries = {name: {kind: Gallery() for kind in GALLERY_RANGES} for name in names}
    for start in range(0, samples, chunk_size):
        began = time.perf_counter()
        images, labels = official_samples(min(chunk_size, samples - start))
        generated = time.perf_counter()
        predictions = predict(images, slice(start, start + len(images)))
        predicted = time.perf_counter()
        ious = {name: sample_ious(predictions[name].boxes, labels) for name in names}
        seconds["generation"] += generated - began
        seconds["inference"] += predicted - generated
        seconds["scoring"] += time.perf_counter() - predicted
        for name in names:
            got = predictions[name]
            values = (labels, got.boxes, got.raw_boxes, got.presence, ious[name])
            for key, value in zip(fields, values, strict=True):
                parts[name][key].append(value)
            _fill_galleries(galleries[name], gallery_size, images, labels, got.boxes, ious[name])
    return {
        name: Evaluation(
            **{key: np.concatenate(parts[name][key]) for key in fields},
            galleries=galleries[name],
            seconds=dict(seconds),
        )
        for name in names
    }


def _fill_galleries(
    galleries: dict[str, Gallery],
    size: int,
    images: np.ndarray,
    labels: np.ndarray,
    boxes: np.ndarray,
    ious: np.ndarray,
) -> None:
    for name, (low, high) in GALLERY_RANGES.items():
        gallery = galleries[name]
        inside = (ious > low) if name == "good" else (ious >= low) & (ious <= high)
        for index in np.flatnonzero(inside & ~np.isnan(ious)):
            if len(gallery.images) >= size:
                break
            gallery.images.append(images[index])
            gallery.true_boxes.append(labels[index])
            gallery.predicted_boxes.append(boxes[index])
            gallery.ious.append(float(ious[index]))


def ship_groups(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Group names per sample for the score splits: ship width, edge contact and yaw.

    Edge contact means the drawn outline runs past the image edge, so part of it is lost.

    Labels (N, 5); samples without a ship get the group 'no ship' in every split.
    """
    labels = np.asarray(labels, dtype=np.float64)
    present = has_box(labels)
    width = np.where(present, labels[:, 3], 0)
    size = np.where(width < 24, "width 18-23", np.where(width < 30, "width 24-29", "width 30-36"))
    edge = np.where(outline_leaves_image(labels), "outline cut by the edge", "outline inside")
    quarter = (np.mod(np.nan_to_num(labels[:, 2]), 2 * np.pi) // (np.pi / 2)).astype(int)
    yaw = np.array(["yaw 0-90°", "yaw 90-180°", "yaw 180-270°", "yaw 270-360°"])[quarter % 4]
    return {
        name: np.where(present, values, "no ship")
        for name, values in (("size", size), ("edge", edge), ("yaw", yaw))
    }


def score_by_group(ious: np.ndarray, groups: np.ndarray) -> list[dict]:
    """Rows (group, scored samples, score, mean IoU) for each group, true negatives left out."""
    ious = np.asarray(ious, dtype=np.float64)
    groups = np.asarray(groups)
    if ious.shape != groups.shape:
        raise ValueError(
            f"ious and groups must have the same shape, got {ious.shape} and {groups.shape}"
        )
    rows = []
    for group in sorted(set(groups.tolist()), key=_natural_order):
        values = ious[(groups == group) & ~np.isnan(ious)]
        if values.size:
            rows.append(
                {
                    "group": group,
                    "samples": int(values.size),
                    "score": float(np.mean(values > IOU_THRESHOLD)),
                    "std_error": _binomial_error(
                        float(np.mean(values > IOU_THRESHOLD)), int(values.size)
                    ),
                    "mean_iou": float(values.mean()),
                }
            )
    return rows


def _natural_order(name: str) -> tuple:
    """Sort key that puts 'yaw 90-180°' before 'yaw 180-270°' and 'no ship' last."""
    if name == "no ship":
        return (1, ())
    return (0, tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)))


def _binomial_error(share: float, count: int) -> float:
    return float(np.sqrt(share * (1 - share) / count)) if count else float("nan")


def format_splits(splits: dict[str, list[dict]]) -> str:
    """`Evaluation.splits()` as text: one `format_rows` table per split, each with its name."""
    return "\n\n".join(f"by {name}\n{format_rows(rows)}" for name, rows in splits.items())


def format_rows(rows: list[dict]) -> str:
    """A plain-text table of `score_by_group` rows: group, samples, score and its standard
    error, mean IoU."""
    return format_table(
        ["group", "samples", "score", "s.e.", "mean IoU"],
        [
            [
                row["group"],
                row["samples"],
                f"{row['score']:.3f}",
                f"{row['std_error']:.3f}",
                f"{row['mean_iou']:.3f}",
            ]
            for row in rows
        ],
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
    below: its boxes (N, 5) after 0, 1, ... refiner passes, with one view and with four views
    of each window (`boxes["one view"]`, `boxes["four views"]`, lists of passes + 1 arrays,
    no presence gate), the model's own boxes (its views, its passes), and the detector's,
    the classifier's (None without one) and the model's gated presence (N,)."""

    boxes: dict[str, list[np.ndarray]]
    model_boxes: np.ndarray
    detector_presence: np.ndarray
    classifier_presence: np.ndarray | None
    presence: np.ndarray
    threshold: float


def refiner_runs(model: RefinedDetectorPipeline, images: np.ndarray, passes: int) -> RefinerRuns:
    """Run the refined detector on validation images (N, 200, 200) for 0 to `passes`
    refiner passes (at least the model's own), once with one view and once with four."""
    passes = check_count(passes, "passes")
    if passes < model.passes:
        raise ValueError(f"passes must be at least the model's {model.passes}, got {passes}")
    boxes = {}
    for name, views in (("one view", False), ("four views", True)):
        variant = copy.copy(model)
        variant.views = views
        boxes[name], detector_presence = variant.boxes_by_pass(images, passes)
    classifier = None if model.classifier is None else model.classifier_presence(images)
    return RefinerRuns(
        boxes=boxes,
        model_boxes=boxes["four views" if model.views else "one view"][model.passes],
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
            zip(runs.boxes["one view"], runs.boxes["four views"], strict=True)
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


@dataclass(frozen=True)
class RestartRuns:
    """A refined detector's boxes on validation images from every start, computed once for
    `restart_table` and `verifier_vote_table`: `boxes` (starts, N, 5) refined from the
    detector's proposal as it is and then from each restart start
    (`RefinedDetectorPipeline.restart_candidates`); the
    verifier's `scores` (starts, N) of them; the model's presence (N,) before the verifier
    votes, the mean of that many `voters` (the detector, and the classifier if any), and
    its threshold; and the refiner's windows per box for the first start and for each
    restart (passes times views)."""

    boxes: np.ndarray
    scores: np.ndarray
    presence: np.ndarray
    threshold: float
    voters: int
    first_windows: int
    restart_windows: int


def restart_runs(
    model: RefinedDetectorPipeline, images: np.ndarray, chunk_size: int = 512
) -> RestartRuns:
    """Run a refined detector with a verifier on validation images (N, 200, 200) from
    every start, whatever its verifier says, `chunk_size` images at a time (the restarts
    hold a copy of each image per start)."""
    if model.verifier is None:
        raise ValueError("this refined detector has no verifier: nothing picks among restarts")
    images = check_images(images).astype(np.float32)
    chunk_size = check_count(chunk_size, "chunk_size", minimum=1)
    boxes, scores, presence = [], [], []
    for first in range(0, len(images), chunk_size):
        chunk = images[first : first + chunk_size]
        boxes_by_pass, detector_presence = model.boxes_by_pass(chunk, model.passes)
        starts = [boxes_by_pass[-1], *model.restart_candidates(chunk, boxes_by_pass[0])]
        boxes.append(np.stack(starts))
        scores.append(np.stack([model.verifier_scores(chunk, start) for start in starts]))
        presence.append(model.presence(chunk, detector_presence))
    return RestartRuns(
        boxes=np.concatenate(boxes, axis=1),
        scores=np.concatenate(scores, axis=1),
        presence=np.concatenate(presence),
        threshold=model.presence_threshold,
        voters=model.presence_voters,
        first_windows=model.network_passes[1],
        restart_windows=model.refiner_windows(model.restart_views),
    )


def first_starts(runs: RestartRuns, count: int) -> RestartRuns:
    """`runs` as if the pipeline had only its first `count` starts (the first start
    included), e.g. `1 + len(pipelines.RESTART_TURNS)` for the turns without the moves."""
    count = check_count(count, "count", minimum=1)
    if count > len(runs.boxes):
        raise ValueError(f"count must be at most the {len(runs.boxes)} starts of runs, got {count}")
    return replace(runs, boxes=runs.boxes[:count], scores=runs.scores[:count])


def restarted_choice(runs: RestartRuns, restart_below: float) -> tuple[np.ndarray, np.ndarray]:
    """What a refined detector with this `restart_below`, its verifier not voting on
    presence, answers on the images of `runs` (see `voted_choice` for one that votes):
    its boxes (N, 5) and whether each was restarted (N,): where the presence gate draws a
    box and the verifier scores the first start's box below `restart_below`, the
    best-scored start's box (the first on a tie, as `RefinedDetectorPipeline.restarted_boxes`
    keeps it)."""
    restarted = (runs.scores[0] < restart_below) & (runs.presence >= runs.threshold)
    best = best_scored_boxes(runs.boxes, runs.scores)
    return np.where(restarted[:, None], best, runs.boxes[0]), restarted


def voted_choice(runs: RestartRuns, restart_below: float) -> tuple[np.ndarray, np.ndarray]:
    """What a refined detector whose verifier votes on presence answers on the images of
    `runs` with this `restart_below`, before its gate: its boxes (N, 5), each image's
    best-scored start where the verifier scores the first start's box below
    `restart_below`, and the presence (N,), the verifier's score of the box kept joining
    the vote. (The pipeline skips the restarts where no score could lift the vote to its
    threshold, so there its boxes and presence may differ from these; the gate drops
    those boxes either way.)"""
    restarted = runs.scores[0] < restart_below
    best = best_scored_boxes(runs.boxes, runs.scores)
    boxes = np.where(restarted[:, None], best, runs.boxes[0])
    scores = np.where(restarted, runs.scores.max(axis=0), runs.scores[0])
    return boxes, with_one_more_vote(runs.presence, runs.voters, scores)


def verifier_vote_table(runs: RestartRuns, labels: np.ndarray, restart_below: float) -> str:
    """Whether the verifier should vote on presence, for `runs` against their labels (N, 5)
    with this `restart_below`: the vote without it (the detector's and the classifier's
    presence at the model's threshold, restarts where that gate draws a box, as in
    `restart_table`) and with its score of the box kept (at its best threshold, restarts
    where that score could lift the vote to it), with the share of images restarted, the
    empty images that get a box, the ships that do not, and the challenge score; and, as
    the bound any presence decision can reach with the voted boxes, the truth."""
    has_ship = has_box(labels)
    without_boxes, restarted = restarted_choice(runs, restart_below)
    boxed = runs.presence >= runs.threshold
    rows = [
        vote_row(
            "two-way vote" if runs.voters == 2 else "detector alone",
            runs.threshold,
            restarted,
            boxed,
            has_ship,
            ap_at_iou(gate_boxes(without_boxes, runs.presence, runs.threshold), labels),
        )
    ]
    with_boxes, with_presence = voted_choice(runs, restart_below)
    threshold, score = best_presence_threshold(with_presence, with_boxes, labels)
    doubted = runs.scores[0] < restart_below
    rows.append(
        vote_row(
            "with the verifier",
            threshold,
            doubted & vote_can_reach(runs.presence, runs.voters, threshold),
            with_presence >= threshold,
            has_ship,
            score,
        )
    )
    return vote_table(rows, with_boxes, labels, "restarted")


def vote_table(
    rows: list[tuple[str, ...]], boxes: np.ndarray, labels: np.ndarray, share: str
) -> str:
    """A table of presence votes: `rows` of `vote_row`, whose third column is `share`,
    then the truth deciding presence for the boxes (N, 5) against their labels (N, 5)."""
    bound = ap_at_iou(gate_boxes(boxes, has_box(labels).astype(float), 0.5), labels)
    rows = [*rows, ("the truth", "-", "-", "0", "0", f"{bound:.4f}")]
    header = ("presence from", "threshold", share, "empty images boxed", "ships unboxed")
    return format_table((*header, "validation score"), rows)


def vote_row(
    name: str,
    threshold: float,
    restarted: np.ndarray,
    boxed: np.ndarray,
    has_ship: np.ndarray,
    score: float,
) -> tuple[str, ...]:
    """One row of `verifier_vote_table`: the vote's name, threshold, share of images
    restarted, empty images boxed, ships without a box and score (masks (N,))."""
    return (
        name,
        f"{threshold:.2f}",
        f"{np.mean(restarted):.3f}",
        f"{np.sum(boxed & ~has_ship)}",
        f"{np.sum(~boxed & has_ship)}",
        f"{score:.4f}",
    )


@dataclass(frozen=True)
class OutlineRuns:
    """The outlines fitted from every start of a `RestartRuns` (`outline_fit`), on the
    images whose first box the verifier scores below `restart_below` (the images a refined
    detector restarts; elsewhere NaN boxes, scores 0): the fitted `boxes` (starts, N, 5),
    the verifier's `scores` (starts, N) of them and their `log_ratios` (starts, N)."""

    boxes: np.ndarray
    scores: np.ndarray
    log_ratios: np.ndarray
    restart_below: float

    @property
    def restarted(self) -> np.ndarray:
        """(N,) whether the images were restarted, so that their outlines were fitted."""
        return has_box(self.boxes[0])


def outline_runs(
    model: RefinedDetectorPipeline,
    images: np.ndarray,
    runs: RestartRuns,
    chunk_size: int = 512,
    line_free: bool = False,
) -> OutlineRuns:
    """Fit the generator's outline from every start of `runs` on the images (N, 200, 200)
    whose first box `model`'s verifier scores below its `restart_below`, on their plain log
    ratios or, `line_free`, with the long noise lines made neutral, and score the fitted
    boxes with that verifier, `chunk_size` images at a time."""
    images = check_images(images).astype(np.float32)
    chunk_size = check_count(chunk_size, "chunk_size", minimum=1)
    restarted = np.flatnonzero(runs.scores[0] < model.restart_below)
    boxes = np.full(runs.boxes.shape, np.nan)
    scores = np.zeros(runs.scores.shape)
    log_ratios = np.zeros(runs.scores.shape)
    for first in range(0, len(restarted), chunk_size):
        chunk = restarted[first : first + chunk_size]
        fitted, ratios = fitted_outline_boxes(images[chunk], runs.boxes[:, chunk], line_free)
        boxes[:, chunk], log_ratios[:, chunk] = fitted, ratios
        scores[:, chunk] = model.verifier_scores_of_sets(images[chunk], fitted)
    return OutlineRuns(boxes, scores, log_ratios, model.restart_below)


def outline_choice(
    runs: RestartRuns, outlines: OutlineRuns, weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """What a refined detector whose fitted outlines join its restarts, with this outline
    `weight`, answers on the images of `runs`, before its gate: its boxes (N, 5), each
    restarted image's best candidate by `pipelines.judged_scores` (a start's box or the
    outline fitted from it), and the presence (N,), the verifier's score of the box kept
    joining the vote (see `voted_choice` for the images the pipeline skips)."""
    boxes, kept_scores = outline_kept(runs, outlines, weight)
    return boxes, with_one_more_vote(runs.presence, runs.voters, kept_scores)


def outline_kept(
    runs: RestartRuns, outlines: OutlineRuns, weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """The boxes (N, 5) that `outline_choice` keeps on the images of `runs`, and the
    verifier's scores (N,) of them."""
    candidates = np.concatenate([runs.boxes, outlines.boxes])
    scores = np.concatenate([runs.scores, outlines.scores])
    log_ratios = np.concatenate([outlines.log_ratios, outlines.log_ratios])
    chosen = np.argmax(judged_scores(scores, log_ratios, weight), axis=0)
    chosen = np.where(outlines.restarted, chosen, 0)
    picked = np.arange(len(chosen))
    return candidates[chosen, picked], scores[chosen, picked]


def truth_picks(
    runs: RestartRuns, outlines: OutlineRuns, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The truth picking among the candidates of `runs` and their `outlines` against the
    labels (N, 5): each image's candidate (N, 5) with the highest IoU with its ship (a
    start's box or a fitted outline; an image not restarted keeps its first box), and that
    IoU (N,) (0 on the empty images)."""
    candidates = np.concatenate([runs.boxes, outlines.boxes])
    ious = ship_ious_of_sets(candidates, labels)
    ious[1:, ~outlines.restarted] = -1.0  # an image not restarted keeps its first box
    return best_scored_boxes(candidates, ious), np.max(ious, axis=0)


def outline_judge_table(
    runs: RestartRuns,
    outlines: OutlineRuns,
    labels: np.ndarray,
    weights: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1),
) -> str:
    """Whether fitted outlines should join the restarts, for `runs` against their labels
    (N, 5): the restarts alone (the verifier voting, `voted_choice`), then the fitted
    outlines joining them with each outline weight in `weights`, each at its best presence
    threshold, with the empty images that get a box, the ships that do not and the
    challenge score; and, as the bound of these candidates, the truth picking the
    candidate and deciding presence."""
    has_ship = has_box(labels)
    rows = []
    choices = {"restarts alone": voted_choice(runs, outlines.restart_below)}
    for weight in weights:
        choices[f"with outlines, weight {weight:g}"] = outline_choice(runs, outlines, weight)
    for name, (boxes, presence) in choices.items():
        threshold, score = best_presence_threshold(presence, boxes, labels)
        boxed = presence >= threshold
        rows.append(
            (
                name,
                f"{threshold:.2f}",
                f"{np.sum(boxed & ~has_ship)}",
                f"{np.sum(~boxed & has_ship)}",
                f"{score:.4f}",
            )
        )
    best, _ = truth_picks(runs, outlines, labels)
    bound = ap_at_iou(np.where(has_ship[:, None], best, np.nan), labels)
    rows.append(("the truth picks", "-", "0", "0", f"{bound:.4f}"))
    return format_table(
        ("candidates", "threshold", "empty images boxed", "ships unboxed", "validation score"),
        rows,
    )


LINE_FREE_WEIGHTS = (0.05, 0.1, 0.2, 0.3, 0.5)
"""The outline weights `line_free_fit_table` tries for the outlines fitted on line-free maps."""


def line_free_fit_table(
    model: RefinedDetectorPipeline,
    images: np.ndarray,
    runs: RestartRuns,
    plain: OutlineRuns,
    free: OutlineRuns,
    labels: np.ndarray,
    plain_weight: float,
    weights: tuple[float, ...] = LINE_FREE_WEIGHTS,
) -> str:
    """Whether the outlines should be fitted on the line-free log ratios, for `runs` on
    images (N, 200, 200) against their labels (N, 5): the outlines fitted on the plain log
    ratios (`plain`) at `plain_weight`, then those fitted on the line-free ones (`free`,
    `outline_runs(..., line_free=True)`) at each of `weights`, each with `model`'s presence
    (its three-way vote and line vote, `RefinedDetectorPipeline.voted_presence`) at its
    gate: the restarted ships whose kept box hits (IoU above 0.7), the empty images boxed,
    the ships unboxed and the challenge score; last, for each kind of fit, the truth
    picking among the candidates and deciding presence."""
    has_ship = has_box(labels)
    restarted_ships = plain.restarted & has_ship
    choices = [(f"plain fits, weight {plain_weight:g}", plain, plain_weight)]
    choices += [(f"line-free fits, weight {weight:g}", free, weight) for weight in weights]
    rows = []
    for name, outlines, weight in choices:
        boxes, scores = outline_kept(runs, outlines, weight)
        presence = model.voted_presence(images, boxes, runs.presence, scores)
        boxed = presence >= model.gate_threshold
        hits = sample_ious(boxes[restarted_ships], labels[restarted_ships]) > IOU_THRESHOLD
        score = ap_at_iou(gate_boxes(boxes, presence, model.gate_threshold), labels)
        rows.append(
            (
                name,
                f"{np.sum(hits)} of {np.sum(restarted_ships)}",
                f"{np.sum(boxed & ~has_ship)}",
                f"{np.sum(~boxed & has_ship)}",
                f"{score:.4f}",
            )
        )
    for kind, outlines in (("plain", plain), ("line-free", free)):
        best, best_ious = truth_picks(runs, outlines, labels)
        hits = best_ious[restarted_ships] > IOU_THRESHOLD
        bound = ap_at_iou(np.where(has_ship[:, None], best, np.nan), labels)
        rows.append(
            (
                f"the truth picks, {kind} fits",
                f"{np.sum(hits)} of {np.sum(restarted_ships)}",
                "0",
                "0",
                f"{bound:.4f}",
            )
        )
    header = ("candidates", "restarted ships hit", "empty images boxed", "ships unboxed")
    return format_table((*header, "validation score"), rows)


LINE_VOTE_BANDS = ((0.3, 0.8), (0.4, 0.7), (0.0, 1.0))
"""The bands of the three-way vote that `line_vote_table` lets the line vote decide in."""


def line_vote_table(
    runs: RestartRuns,
    outlines: OutlineRuns,
    weight: float,
    evidence: np.ndarray,
    labels: np.ndarray,
    gate_threshold: float,
    bands: tuple[tuple[float, float], ...] = LINE_VOTE_BANDS,
) -> str:
    """Whether the line vote (`line_vote`) should decide presence, for `runs` and their
    `outlines` at this outline `weight` against their labels (N, 5), given the
    `line_vote.line_free_evidence` (N,) of each image's kept box: the three-way vote at
    `gate_threshold`, then the line vote fitted on these images (`line_vote.fit_line_vote`)
    deciding where the three-way vote lies in each band, at its best threshold, with the
    share of images it decides, the empty images that get a box, the ships that do not,
    and the challenge score; last, the truth deciding presence for these boxes. The
    evidence must be that of the boxes `outline_kept(runs, outlines, weight)` returns."""
    boxes, scores = outline_kept(runs, outlines, weight)
    three_way = with_one_more_vote(runs.presence, runs.voters, scores)
    features = line_vote_features(runs.presence, scores, evidence)
    has_ship = has_box(labels)
    rows = [
        vote_row(
            "three-way vote",
            gate_threshold,
            np.zeros(len(labels), dtype=bool),
            three_way >= gate_threshold,
            has_ship,
            ap_at_iou(gate_boxes(boxes, three_way, gate_threshold), labels),
        )
    ]
    for band in bands:
        vote, threshold, _ = fit_line_vote(features, boxes, three_way, labels, gate_threshold, band)
        asked = vote.in_band(three_way)
        presence = vote.decided_presence(three_way, features, gate_threshold)
        rows.append(
            vote_row(
                f"line vote in [{band[0]:g}, {band[1]:g})",
                threshold,
                asked,
                presence >= gate_threshold,
                has_ship,
                ap_at_iou(gate_boxes(boxes, presence, gate_threshold), labels),
            )
        )
    return vote_table(rows, boxes, labels, "images asked")


def line_vote_examples(
    three_way: np.ndarray, line_presence: np.ndarray, labels: np.ndarray, gate_threshold: float
) -> list[int]:
    """Two images to show what the line vote changes, from the three-way vote (N,), the
    presence once the line vote decides (N,) and the labels (N, 5): the first empty image
    whose box it takes away (else the empty image whose presence it lowers most), and the
    first ship it gives a box (else the ship whose presence it raises most)."""
    has_ship = has_box(labels)
    if has_ship.all() or not has_ship.any():
        raise ValueError("line_vote_examples needs images with a ship and images without one")
    before, after = three_way >= gate_threshold, line_presence >= gate_threshold
    change = np.asarray(line_presence, dtype=np.float64) - three_way
    examples = []
    for kind, flipped, order in (
        (~has_ship, before & ~after, change),
        (has_ship, ~before & after, -change),
    ):
        candidates = np.flatnonzero(kind & flipped)
        if candidates.size == 0:
            candidates = np.flatnonzero(kind)
            candidates = candidates[np.argsort(order[candidates], kind="stable")]
        examples.append(int(candidates[0]))
    return examples


def ship_iou_table(boxes: dict[str, np.ndarray], labels: np.ndarray) -> str:
    """How tight each set of boxes (N, 5) is on the ships of labels (N, 5), every box
    counted (no presence gate): the median IoU and how many ships fall in each IoU band of
    `metrics.counts_by_iou_band` (the last one, above 0.7, counts the hits)."""
    has_ship = has_box(labels)
    rows = []
    for name, values in boxes.items():
        ious = sample_ious(values[has_ship], labels[has_ship])  # 0 for a ship without a box
        bands = counts_by_iou_band(ious)
        rows.append((name, f"{np.median(ious):.3f}", *(f"{count:,}" for count in bands.values())))
    bands = [f"IoU {band}" for band in counts_by_iou_band(np.zeros(1))]
    return format_table(("boxes", "median IoU", *bands), rows)


def ship_ious_of_sets(boxes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The IoU (S, N) of each of S sets of boxes (S, N, 5) with the ships of labels (N, 5):
    0 on the empty images and for a ship without a box, so that picking each image's best
    set by it is the truth picking."""
    has_ship = has_box(labels)
    ious = np.zeros(boxes.shape[:2])
    ious[:, has_ship] = [sample_ious(one[has_ship], labels[has_ship]) for one in boxes]
    return ious


def restart_table(
    runs: RestartRuns,
    labels: np.ndarray,
    shown: tuple[float, ...] = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 0.995, 1.0),
) -> str:
    """The challenge score of `runs` against their labels (N, 5) for each `restart_below`
    in `shown` (0: never restart), with the share of images whose box is restarted and the
    refiner's windows per image; and, as the bound a perfect verifier would reach from these
    starts, the score when the truth picks the start."""
    restarts = len(runs.boxes) - 1
    rows = []
    for below in shown:
        boxes, restarted = restarted_choice(runs, below)
        windows = runs.first_windows + restarts * runs.restart_windows * restarted.mean()
        score = ap_at_iou(gate_boxes(boxes, runs.presence, runs.threshold), labels)
        rows.append((f"{below:.3f}", f"{restarted.mean():.3f}", f"{windows:.1f}", f"{score:.4f}"))
    best = best_scored_boxes(runs.boxes, ship_ious_of_sets(runs.boxes, labels))
    bound = ap_at_iou(gate_boxes(best, runs.presence, runs.threshold), labels)
    boxed = np.mean(runs.presence >= runs.threshold)
    every_start = f"{runs.first_windows + restarts * runs.restart_windows * boxed:.1f}"
    rows.append(("the truth picks", f"{boxed:.3f}", every_start, f"{bound:.4f}"))
    return format_table(
        ("restart below", "images restarted", "refiner windows / image", "validation score"),
        rows,
    )


def far_axis_errors_by_shape(
    boxes: np.ndarray,
    labels: np.ndarray,
    min_error: float = 25.0,
    aspect_edges: tuple[float, ...] = (1.3, 1.5, 1.7),
) -> str:
    """Boxes (N, 5) more than `min_error` degrees off the true axis of labels (N, 5), by
    the ship's length over width: how many, their median axis error, and two angles of the
    ship's shape for comparison (degrees from its axis): the box's diagonal, atan(w / h),
    and the edge from a wing tip to the tail notch, atan(1.5 w / h) for a notch a third of
    the way up the ship (the generator's mean)."""
    errors = axis_errors_degrees(boxes, labels)
    far = errors > min_error  # NaN (no box, or no ship) compares False
    aspect = labels[:, 4] / labels[:, 3]
    edges = (-np.inf, *aspect_edges, np.inf)
    rows = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        group = far & (aspect >= low) & (aspect < high)
        name = (
            f"below {high:g}"
            if low == -np.inf
            else (f"{low:g} and above" if high == np.inf else f"{low:g} to {high:g}")
        )
        if not group.any():
            rows.append((name, "0", "", "", ""))
            continue
        width_over_height = labels[group, 3] / labels[group, 4]
        rows.append(
            (
                name,
                f"{group.sum():,}",
                f"{np.median(errors[group]):.1f}",
                f"{np.degrees(np.median(np.arctan(width_over_height))):.1f}",
                f"{np.degrees(np.median(np.arctan(1.5 * width_over_height))):.1f}",
            )
        )
    return format_table(
        ("length / width", "boxes", "median axis error", "box diagonal", "tail edge"), rows
    )


def presence_change_table(before: Evaluation, after: Evaluation) -> str:
    """Where two evaluations of the same samples and the same raw boxes (N, 5) make
    different presence calls: how many empty images, ships whose box hits (IoU above 0.7)
    and ships whose box misses had their box taken away and given, going from `before` to
    `after`."""
    if not np.array_equal(before.labels, after.labels, equal_nan=True):
        raise ValueError("the two evaluations scored different samples")
    if not np.array_equal(before.raw_boxes, after.raw_boxes, equal_nan=True):
        raise ValueError("the two evaluations have different boxes: compare presence alone")
    hit = np.nan_to_num(rotated_iou(before.raw_boxes, before.labels), nan=0.0) > IOU_THRESHOLD
    taken = before.predicted_ship & ~after.predicted_ship
    given = ~before.predicted_ship & after.predicted_ship
    kinds = {
        "empty images": ~before.has_ship,
        "ships, the box a hit": before.has_ship & hit,
        "ships, the box a miss": before.has_ship & ~hit,
    }
    rows = [
        (name, f"{np.sum(kind & taken)}", f"{np.sum(kind & given)}") for name, kind in kinds.items()
    ]
    return format_table(("images", "box taken away", "box given"), rows)


def compare_evaluations(results: dict[str, Evaluation]) -> str:
    """A table of models evaluated on the same samples: one row per model, one column per
    number of `Evaluation.summary`."""
    sizes = {len(result.labels) for result in results.values()}
    if len(sizes) != 1:
        raise ValueError(f"the evaluations must cover the same samples, got sizes {sorted(sizes)}")
    first = next(iter(results.values())).labels
    for name, result in results.items():
        if not np.array_equal(result.labels, first, equal_nan=True):
            raise ValueError(f"{name!r} was evaluated on other samples (another seed?)")
    header = ["model", "score", "mean IoU", "IoU where boxed", "ranked AP", "presence acc.", "nose"]
    rows = [
        [
            name,
            f"{result.score:.4f}",
            f"{result.mean_iou:.4f}",
            f"{result.mean_iou_where_boxed:.4f}",
            f"{result.ranked_ap:.4f}",
            f"{result.classifier_accuracy:.4f}",
            f"{result.heading_accuracy[0]:.4f}",
        ]
        for name, result in results.items()
    ]
    return format_table(header, rows)


def compare_with_published(result: Evaluation) -> str:
    """A two-row table: the seed's published score and mean IoU next to this run's."""
    return "\n".join(
        [
            f"{'':<34}{'score':>8}{'mean IoU':>10}",
            f"{'seed write-up (published)':<34}{PUBLISHED_SCORE:>8.4f}{PUBLISHED_MEAN_IOU:>10.4f}",
            f"{'this run, ' + str(len(result.labels)) + ' samples':<34}{result.score:>8.4f}"
            f"{result.mean_iou:>10.4f}",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="spaceship-evaluate", description="Score a pretrained model like the challenge."
    )
    parser.add_argument("--model", choices=PRETRAINED_MODELS, default="baseline")
    parser.add_argument("--samples", type=int, default=10_000, help="official samples to score")
    parser.add_argument("--seed", type=int, default=0, help="np.random.seed before generating")
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error(f"--samples must be at least 1, got {args.samples}")
    if not 0 <= args.seed < 2**32:
        parser.error(f"--seed must be in [0, 2**32), got {args.seed}")
    try:
        model = load_pretrained(args.model)
    except WeightsError as error:
        parser.exit(1, f"{parser.prog}: error: {error}\n")
    result = evaluate_model(model, args.samples, args.seed)
    print(result.summary())
    print(result.classification_report())


if __name__ == "__main__":
    main()
