"""Chapter 10's tables of the verifier's restarts: how many boxes each threshold restarts and
what that buys, and the verifier's vote on presence. They replay the pipeline's choice
(`candidates.chosen_candidates`) on the starts of every image, computed once."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from spaceship_utils.core.metrics import (
    ap_at_iou,
    axis_errors_degrees,
    best_presence_threshold,
    counts_by_iou_band,
    sample_ious,
)
from spaceship_utils.core.tables import format_table
from spaceship_utils.core.validation import check_count, check_images, has_box
from spaceship_utils.detection.candidates import (
    chosen_candidates,
)
from spaceship_utils.detection.presence import (
    gate_boxes,
    vote_can_reach,
    with_one_more_vote,
)
from spaceship_utils.detection.refined import RefinedDetectorPipeline
from spaceship_utils.evaluation.recorded import pipeline_fingerprint
from spaceship_utils.evaluation.recorded_runs import (
    RESTART_RUNS,
    inputs_digest,
    recorded_or_computed,
)


@dataclass(frozen=True)
class RestartRuns:
    """A refined detector's boxes on validation images from every start, computed once for
    `restart_table` and `verifier_vote_table`: `boxes` (starts, N, 5) refined from the
    detector's proposal as it is and then from each restart start
    (`Restarts.restart_candidates`); the
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

    def score(self, boxes: np.ndarray, labels: np.ndarray) -> float:
        """The challenge score of boxes (N, 5) on these images against their labels (N, 5),
        behind the model's presence gate before the verifier votes."""
        return ap_at_iou(gate_boxes(boxes, self.presence, self.threshold), labels)


def restart_runs(
    model: RefinedDetectorPipeline,
    images: np.ndarray,
    chunk_size: int = 512,
    recorded: bool = False,
) -> RestartRuns:
    """Run a refined detector with a verifier on validation images (N, 200, 200) from
    every start, whatever its verifier says, `chunk_size` images at a time (the restarts
    hold a copy of each image per start). With `recorded`, read the runs recorded for this
    pipeline on these images, if any, after replaying the first (`recorded_runs`)."""
    if model.verifier is None:
        raise ValueError("this refined detector has no verifier: nothing picks among restarts")
    images = check_images(images).astype(np.float32)
    chunk_size = check_count(chunk_size, "chunk_size", minimum=1)
    if recorded:
        return recorded_or_computed(
            RESTART_RUNS,
            RestartRuns,
            pipeline_fingerprint(model),
            inputs_digest(images),
            lambda count: restart_runs(model, images[:count], chunk_size),
        )
    boxes, scores, presence = [], [], []
    for first in range(0, len(images), chunk_size):
        chunk = images[first : first + chunk_size]
        boxes_by_pass, detector_presence = model.boxes_by_pass(chunk, model.passes)
        starts = [boxes_by_pass[-1], *model.restarts.restart_candidates(chunk, boxes_by_pass[0])]
        boxes.append(np.stack(starts))
        scores.append(np.stack([model.restarts.verifier_scores(chunk, start) for start in starts]))
        presence.append(model.vote.presence(chunk, detector_presence))
    return RestartRuns(
        boxes=np.concatenate(boxes, axis=1),
        scores=np.concatenate(scores, axis=1),
        presence=np.concatenate(presence),
        threshold=model.presence_threshold,
        voters=model.vote.voters,
        first_windows=model.network_passes[1],
        restart_windows=model.refinement.windows_per_box(model.restart_views),
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
    best-scored start's box (`candidates.chosen_candidates`, the pipeline's own rule)."""
    restarted = (runs.scores[0] < restart_below) & (runs.presence >= runs.threshold)
    return chosen_candidates(runs.boxes, runs.scores, restarted=restarted)[0], restarted


def voted_choice(runs: RestartRuns, restart_below: float) -> tuple[np.ndarray, np.ndarray]:
    """What a refined detector whose verifier votes on presence answers on the images of
    `runs` with this `restart_below`, before its gate: its boxes (N, 5), each image's
    best-scored start where the verifier scores the first start's box below
    `restart_below`, and the presence (N,), the verifier's score of the box kept joining
    the vote. (The pipeline skips the restarts where no score could lift the vote to its
    threshold, so there its boxes and presence may differ from these; the gate drops
    those boxes either way.)"""
    restarted = runs.scores[0] < restart_below
    boxes, scores = chosen_candidates(runs.boxes, runs.scores, restarted=restarted)
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
            runs.score(without_boxes, labels),
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
        score = runs.score(boxes, labels)
        rows.append((f"{below:.3f}", f"{restarted.mean():.3f}", f"{windows:.1f}", f"{score:.4f}"))
    best = chosen_candidates(runs.boxes, ship_ious_of_sets(runs.boxes, labels))[0]
    bound = runs.score(best, labels)
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
