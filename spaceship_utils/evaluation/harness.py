"""Score a model the way the challenge does, on fresh samples from the official generator.

    python -m spaceship_utils.evaluate --model baseline --samples 10000 --seed 0

Samples come from the faithful `make_data` after `np.random.seed(seed)`, in chunks, so
10,000 images never sit in memory at once. A few images of each kind are kept for the
galleries: good (IoU > 0.7), bad (0.55-0.65) and ugly (< 0.2).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import classification_report

from spaceship_utils.core.geometry import rotated_iou
from spaceship_utils.core.metrics import (
    IOU_THRESHOLD,
    heading_accuracy,
    ranked_average_precision,
    sample_ious,
)
from spaceship_utils.core.tables import format_table
from spaceship_utils.core.validation import IMAGE_SIZE, check_count, has_box
from spaceship_utils.data.generator import make_data
from spaceship_utils.detection.pipelines import Predictions
from spaceship_utils.detection.refined import RefinedDetectorPipeline
from spaceship_utils.detection.variants import variant_predictions
from spaceship_utils.evaluation.recorded import (
    REPLAY_IOU,
    REPLAY_SAMPLES,
    Recording,
    RecordingError,
    check_replay,
    find_recording,
    pipeline_fingerprint,
    replay_flips_allowed,
)
from spaceship_utils.studies.label_statistics import outline_leaves_image

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
    recorded: bool = False
    """True when the predictions were read from a recording (`evaluation.recorded`) after
    a replay of the first samples: the inference seconds are those timed when recorded."""

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
            f"inference {self.seconds['inference']:.1f} s"
            f"{' when recorded' if self.recorded else ''}, "
            f"scoring {self.seconds['scoring']:.1f} s)"
        )


def official_samples(count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` samples from the global stream: images (count, 200, 200) float32, labels float64."""
    images = np.empty((count, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    labels = np.empty((count, 5))
    for index in range(count):
        images[index], labels[index] = make_data()
    return images, labels


def evaluate_model(
    model,
    samples: int = 10_000,
    seed: int = 0,
    chunk_size: int = 500,
    gallery_size: int = 8,
    recorded: str | None = None,
) -> Evaluation:
    """Score `model.predict_details` on `samples` official samples after np.random.seed(seed).

    Given `recorded`, a pipeline name, and a recording of that name by this pipeline
    (`recorded.pipeline_fingerprint`) for these samples and seed (`evaluation.recorded`),
    the model predicts only the first samples again, to check the recording on this CPU,
    and the rest is read from the recording."""
    evaluations = evaluate_predictions(
        lambda images, _: {recorded or "model": model.predict_details(images)},
        samples,
        seed,
        chunk_size,
        gallery_size,
        recordings=_recordings({recorded: model} if recorded else {}, samples, seed),
    )
    return next(iter(evaluations.values()))


def evaluate_models(
    models: dict, samples: int, seed: int, gallery_size: int = 8, recorded: bool = False
) -> dict[str, Evaluation]:
    """`evaluate_model` of each model by name on the same official samples; with `recorded`,
    each reads the recording under its own name where there is one."""
    return {
        name: evaluate_model(
            model, samples, seed, gallery_size=gallery_size, recorded=name if recorded else None
        )
        for name, model in models.items()
    }


def _recordings(models: dict, samples: int, seed: int) -> dict[str, Recording] | None:
    """The recordings of all these pipelines by name on these samples, each made by the
    same pipeline (its fingerprint), or None if any is missing."""
    found = {
        name: find_recording(name, samples, seed, pipeline_fingerprint(model))
        for name, model in models.items()
    }
    if not models or any(recording is None for recording in found.values()):
        return None
    return found


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
    recorded: bool = False,
) -> dict[str, Evaluation]:
    """`evaluate_model` of refined detectors that differ only in their verifier, presence
    thresholds, outline weight, line-free fits and line vote, on the same official samples,
    through `variants.variant_predictions`: their shared work is done once (their
    inference seconds are those of all of them together). Given `refined`, the
    `evaluate_model` of their refined detector without its verifier on the same samples
    and seed, its refined boxes and presence are reused rather than computed again (the
    first `REUSE_CHECKED` images are, to check that they match). With `recorded`, the
    variants' recordings under their names are read if all exist (see `evaluate_model`)."""
    if refined is not None and len(refined.labels) != samples:
        raise ValueError(f"refined scored {len(refined.labels)} samples, not {samples}")

    def predict(images: np.ndarray, chunk: slice) -> dict[str, Predictions]:
        if refined is None or chunk.start == chunk.stop:  # the first call: no sample yet
            return variant_predictions(variants, images)
        known = (refined.raw_boxes[chunk], refined.presence[chunk])
        if chunk.start == 0:
            check_reused_refinement(next(iter(variants.values())), images, *known)
        return variant_predictions(variants, images, refined=known)

    recordings = _recordings(variants if recorded else {}, samples, seed)
    evaluations = evaluate_predictions(
        predict, samples, seed, chunk_size, gallery_size, recordings=recordings
    )
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
    up to float rounding: two loads of the same weights, or two CPUs, can differ by a
    thousandth of a pixel after the refiner's passes, more on an empty image whose box sits
    on noise, so each box must overlap its own with an IoU above 0.99 and each presence lie
    within 0.001 of its own, but for `recorded.replay_flips_allowed` of them."""
    count = min(REUSE_CHECKED, len(images))
    boxes_by_pass, detector_presence = model.boxes_by_pass(images[:count], model.passes)
    own_presence = model.vote.presence(images[:count], detector_presence)
    overlaps = rotated_iou(boxes_by_pass[-1], boxes[:count])
    apart = (overlaps <= REPLAY_IOU) | (np.abs(own_presence - presence[:count]) > 1e-3)
    if np.sum(apart) > replay_flips_allowed(count):
        raise ValueError(
            "refined is not what these variants' refined detector answers on these samples "
            f"({np.sum(apart)} of its first {count} boxes apart: smallest IoU with their own "
            f"{np.min(overlaps):.3f}, largest presence difference "
            f"{np.max(np.abs(own_presence - presence[:count])):.3g}):"
            " evaluate it with evaluate_model on the same samples and seed, without its verifier"
        )


def evaluate_predictions(
    predict: Callable[[np.ndarray, slice], dict[str, Predictions]],
    samples: int,
    seed: int,
    chunk_size: int,
    gallery_size: int,
    recordings: dict[str, Recording] | None = None,
) -> dict[str, Evaluation]:
    """Score the predictions `predict` returns, by name, for raw images (N, 200, 200) and
    where they lie among the samples (a slice), on `samples` official samples after
    np.random.seed(seed), `chunk_size` at a time. A first, untimed call gets one blank image
    and an empty slice: building the predict functions is not inference time. Given
    `recordings` by the same names, `predict` runs on the first `REPLAY_SAMPLES` samples
    only, which must match them (`recorded.check_replay`); the rest is read from them."""
    samples = check_count(samples, "samples", minimum=1)
    chunk_size = check_count(chunk_size, "chunk_size", minimum=1)
    names = list(predict(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32), slice(0, 0)))
    if recordings is not None:
        if set(recordings) != set(names):
            raise RecordingError(f"recordings of {sorted(recordings)} for pipelines {names}")
        predict = _replayed(predict, recordings)
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
    if recordings is not None:
        seconds["inference"] = next(iter(recordings.values())).seconds["inference"]
    return {
        name: Evaluation(
            **{key: np.concatenate(parts[name][key]) for key in fields},
            galleries=galleries[name],
            seconds=dict(seconds),
            recorded=recordings is not None,
        )
        for name in names
    }


def _replayed(
    predict: Callable[[np.ndarray, slice], dict[str, Predictions]],
    recordings: dict[str, Recording],
) -> Callable[[np.ndarray, slice], dict[str, Predictions]]:
    """`predict` that checks the recordings on the first `REPLAY_SAMPLES` samples, then
    answers every chunk from them."""

    def replayed(images: np.ndarray, chunk: slice) -> dict[str, Predictions]:
        if chunk.start == 0:
            count = min(REPLAY_SAMPLES, len(images))
            fresh = predict(images[:count], slice(0, count))
            for name, recording in recordings.items():
                check_replay(recording, fresh[name])
        return {name: recording.predictions(chunk) for name, recording in recordings.items()}

    return replayed


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


def compare_group_sets(rows: list[dict], first: list[str], second: list[str]) -> str:
    """Two sets of groups of one split (`score_by_group` rows), each pooled into one score,
    and the gap between them in standard errors of the difference (two binomial rates):
    three lines, the second set first.

    E.g. `compare_group_sets(splits["yaw"], ["yaw 0-90°", "yaw 90-180°"], [...])`.
    """
    by_name = {row["group"]: row for row in rows}
    pooled = []
    for groups in (first, second):
        missing = [group for group in groups if group not in by_name]
        if missing or not groups:
            raise ValueError(f"no groups {missing or groups} among {sorted(by_name)}")
        samples = sum(by_name[group]["samples"] for group in groups)
        hits = sum(by_name[group]["score"] * by_name[group]["samples"] for group in groups)
        pooled.append((hits / samples, samples))
    (score_a, count_a), (score_b, count_b) = pooled
    gap = score_b - score_a
    error = float(np.hypot(_binomial_error(score_a, count_a), _binomial_error(score_b, count_b)))
    names = [" + ".join(second), " + ".join(first)]
    width = max(len(name) for name in names) + 1
    return (
        f"{names[0] + ':':<{width}} {score_b:.3f} ({count_b:,} samples)\n"
        f"{names[1] + ':':<{width}} {score_a:.3f} ({count_a:,} samples)\n"
        f"gap {gap:+.3f}, standard error of the difference {error:.3f} ({gap / error:+.1f} s.e.)"
    )


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
