"""Chapter 11's tables of the generator's outline fitted to each candidate: which weight to
give its likelihood, what the truth would pick, and (its exercise) a line vote on presence.
They replay the pipeline's choice (`candidates.chosen_candidates`) on runs computed once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spaceship_utils.core.metrics import (
    IOU_THRESHOLD,
    ap_at_iou,
    best_presence_threshold,
    sample_ious,
)
from spaceship_utils.core.tables import format_table
from spaceship_utils.core.validation import check_count, check_images, has_box
from spaceship_utils.detection.candidates import (
    chosen_candidates,
    fitted_outline_boxes,
)
from spaceship_utils.detection.line_vote import fit_line_vote, line_vote_features
from spaceship_utils.detection.presence import (
    gate_boxes,
    with_one_more_vote,
)
from spaceship_utils.detection.refined import RefinedDetectorPipeline
from spaceship_utils.evaluation.recorded import pipeline_fingerprint
from spaceship_utils.evaluation.recorded_runs import (
    LINE_FREE_OUTLINE_RUNS,
    OUTLINE_RUNS,
    first_images,
    inputs_digest,
    recorded_or_computed,
)
from spaceship_utils.evaluation.restart_tables import (
    RestartRuns,
    ship_ious_of_sets,
    vote_row,
    vote_table,
    voted_choice,
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
    recorded: bool = False,
) -> OutlineRuns:
    """Fit the generator's outline from every start of `runs` on the images (N, 200, 200)
    whose first box `model`'s verifier scores below its `restart_below`, on their plain log
    ratios or, `line_free`, with the long noise lines made neutral, and score the fitted
    boxes with that verifier, `chunk_size` images at a time. With `recorded`, read the
    outlines recorded for this pipeline from these starts on these images, if any, after
    replaying the first (`recorded_runs`)."""
    images = check_images(images).astype(np.float32)
    chunk_size = check_count(chunk_size, "chunk_size", minimum=1)
    if recorded:
        return recorded_or_computed(
            LINE_FREE_OUTLINE_RUNS if line_free else OUTLINE_RUNS,
            OutlineRuns,
            pipeline_fingerprint(model),
            inputs_digest(images, runs.boxes),
            lambda count: outline_runs(
                model, images[:count], first_images(runs, count), chunk_size, line_free
            ),
        )
    restarted = np.flatnonzero(runs.scores[0] < model.restart_below)
    boxes = np.full(runs.boxes.shape, np.nan)
    scores = np.zeros(runs.scores.shape)
    log_ratios = np.zeros(runs.scores.shape)
    for first in range(0, len(restarted), chunk_size):
        chunk = restarted[first : first + chunk_size]
        fitted, ratios = fitted_outline_boxes(images[chunk], runs.boxes[:, chunk], line_free)
        boxes[:, chunk], log_ratios[:, chunk] = fitted, ratios
        scores[:, chunk] = model.restarts.verifier_scores_of_sets(images[chunk], fitted)
    return OutlineRuns(boxes, scores, log_ratios, model.restart_below)


def outline_choice(
    runs: RestartRuns, outlines: OutlineRuns, weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """What a refined detector whose fitted outlines join its restarts, with this outline
    `weight`, answers on the images of `runs`, before its gate: its boxes (N, 5), each
    restarted image's best candidate by `candidates.chosen_candidates` (a start's box or the
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
    return chosen_candidates(candidates, scores, log_ratios, weight, outlines.restarted)


def truth_picks(
    runs: RestartRuns, outlines: OutlineRuns, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The truth picking among the candidates of `runs` and their `outlines` against the
    labels (N, 5): each image's candidate (N, 5) with the highest IoU with its ship (a
    start's box or a fitted outline; an image not restarted keeps its first box), and that
    IoU (N,) (0 on the empty images)."""
    candidates = np.concatenate([runs.boxes, outlines.boxes])
    ious = ship_ious_of_sets(candidates, labels)
    return chosen_candidates(candidates, ious, restarted=outlines.restarted)


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
    (its three-way vote, and its line vote if it has one: `PresenceVote.voted_presence`) at its
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
        presence = model.vote.voted_presence(images, boxes, runs.presence, scores)
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
                f"truth picks, {kind} fits",
                f"{np.sum(hits)} of {np.sum(restarted_ships)}",
                "0",
                "0",
                f"{bound:.4f}",
            )
        )
    header = ("candidates", "restarted hits", "empty boxed", "ships unboxed")
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
