"""Where the refined detector starts the refiner again on a doubted box: the proposal with
its axis turned, moved along and across its length, and the detector's second guess."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spaceship_utils.core.geometry import rotation_matrices, wrap_angle
from spaceship_utils.core.runtime import network_outputs
from spaceship_utils.detection.candidates import chosen_candidates, fitted_outline_boxes
from spaceship_utils.detection.refinement import Refinement
from spaceship_utils.networks.detector_targets import second_peak_predictions
from spaceship_utils.networks.verifier import verifier_windows

RESTART_TURNS = (np.pi / 4, np.pi / 2, 3 * np.pi / 4)
"""The axis turns (rad) from which the refined detector starts the refiner again on a box
its verifier doubts: with the proposal as it is, four axes 45° apart. Only the axis turns:
the window of a box depends on its larger side, not on which side is which."""


RESTART_SHIFTS = ((14.0, 0.0), (-14.0, 0.0), (0.0, 14.0), (0.0, -14.0))
"""The moves (px along the proposal's length, px across it) from which the refined detector
also starts the refiner again on a box its verifier doubts: the proposal 14 px forward,
back and to either side, its axis kept. A refiner can be lost in place, not only turned:
started elsewhere on the ship, it may find the outline it missed. Chapter 10 chose the
distance (6 to 22 px measured) on its validation images and 4,096 fresh ones."""


SECOND_PEAK_CLEARANCE = 2
"""How far from its heatmap's peak (cells along x or y, 8 px each) the refined detector
looks for the last start of a restart: the detector's box at the best cell outside that
square, its second guess of where the ship is. On chapter 10's validation images and 4,096
fresh ones, 2 cells did better than 4."""


RESTART_BELOW = 0.9
"""The verifier's score under which the refined detector restarts a box from its
`restart_candidates`: on chapter 10's validation images, about 16 % of them (17 % once the
verifier votes on presence, `VERIFIED_PRESENCE_THRESHOLD`). Chosen there and on 4,096 fresh
images; chapter 10's restart table shows it on a plateau from 0.8 to 1.0, and chapter 12's
cost table what the restarts cost. Each round of the verifier's training changes how much
it doubts, so each gets its own threshold."""


RESTART_VIEWS = False
"""Whether the restarts average the refiner's answers over the four window views
(`REFINER_VIEWS` says the same for the first start). One view scored as well or better on
the validation images, for a quarter of the work."""


def turned_boxes(boxes: np.ndarray, turn: float) -> np.ndarray:
    """Boxes (N, 5) with the yaw turned by `turn` (rad), centre and sides unchanged."""
    turned = np.array(boxes, dtype=np.float64)
    turned[:, 2] = wrap_angle(turned[:, 2] + turn)
    return turned


def shifted_boxes(boxes: np.ndarray, along: float, across: float) -> np.ndarray:
    """Boxes (N, 5) moved `along` px in the direction of their height side (the ship's
    length) and `across` px in that of their width side; yaw and sides unchanged."""
    shifted = np.array(boxes, dtype=np.float64)
    # The move in the box's own frame (width first, as `geometry.box_corners` lays it out).
    shifted[:, :2] += np.array([across, along]) @ rotation_matrices(shifted[:, 2])
    return shifted


def restart_starts(proposals: np.ndarray) -> list[np.ndarray]:
    """The boxes (N, 5) from which the refined detector starts the refiner again on the
    proposals (N, 5): one array per turn of `RESTART_TURNS`, then per move of
    `RESTART_SHIFTS`."""
    turned = [turned_boxes(proposals, turn) for turn in RESTART_TURNS]
    return turned + [shifted_boxes(proposals, *move) for move in RESTART_SHIFTS]


def nose_towards(boxes: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Boxes (N, 5), each turned by half a turn where that brings its yaw within a quarter
    turn of the reference box's (N, 5): the same rectangles, with the reference's nose."""
    boxes = np.array(boxes, dtype=np.float64)
    backwards = np.cos(boxes[:, 2] - reference[:, 2]) < 0
    boxes[backwards, 2] = wrap_angle(boxes[backwards, 2] + np.pi)
    return boxes


@dataclass(frozen=True)
class Restarts:
    """The verifier's stage: each refined box the verifier scores below `restart_below`
    is refined again from the proposal turned by each of `RESTART_TURNS`, moved by each
    of `RESTART_SHIFTS`, and from the detector's second guess (`second_peak_proposals`),
    the same passes with `restart_views`; with an `outline_weight`, the generator's outline
    fitted to each of those boxes joins the candidates (fitted on the log ratios with the
    long noise lines made neutral, with `line_free_fits`). One rule keeps a box among them
    (`candidates.chosen_candidates`)."""

    detector: object
    """The detector network, run again for its second guess on the doubted images."""
    refinement: Refinement
    verifier: object
    """The verifier network (`networks.verifier.build_verifier`)."""
    restart_below: float
    restart_views: bool
    outline_weight: float | None
    line_free_fits: bool

    def restarted_boxes(
        self,
        images: np.ndarray,
        proposals: np.ndarray,
        boxes: np.ndarray,
        batch_size: int = 128,
        eligible: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Refined boxes (N, 5), where the verifier scores them below `restart_below` (and,
        given, where `eligible` (N,) is True) replaced by the best of them, their
        `restart_candidates` and, with an `outline_weight`, the outlines fitted to these
        (`candidates_to_judge`, kept by `candidates.chosen_candidates`); and the verifier's
        scores (N,) of the boxes kept."""
        scores, doubted = self.doubted_boxes(images, boxes, batch_size, eligible)
        best = np.array(boxes, dtype=np.float64)
        scores = np.asarray(scores, dtype=np.float64)
        if doubted.size == 0:
            return best, scores
        doubted_images = images[doubted]
        starts, start_scores = self.scored_starts(
            doubted_images, proposals[doubted], best[doubted], scores[doubted], batch_size
        )
        candidates, candidate_scores, log_ratios = self.candidates_to_judge(
            doubted_images, starts, start_scores, batch_size
        )
        best[doubted], scores[doubted] = chosen_candidates(
            candidates, candidate_scores, log_ratios, self.outline_weight
        )
        return best, scores

    def doubted_boxes(
        self,
        images: np.ndarray,
        boxes: np.ndarray,
        batch_size: int = 128,
        eligible: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The verifier's scores (N,) of boxes (N, 5) on images (N, 200, 200), and the
        indices of the boxes it doubts, the ones the pipeline restarts: scored below
        `restart_below` (and, given, where `eligible` (N,) is True)."""
        scores = self.verifier_scores(images, boxes, batch_size)
        doubted = scores < self.restart_below
        return scores, np.flatnonzero(doubted if eligible is None else doubted & eligible)

    def restart_candidates(
        self, images: np.ndarray, proposals: np.ndarray, batch_size: int = 128
    ) -> list[np.ndarray]:
        """The refined boxes (N, 5) of images (N, 200, 200) started from each of the
        `restart_starts` of the proposals (N, 5), then from the `second_peak_proposals`
        (the refinement's passes with `restart_views`): one array per start. The boxes from
        the proposal's starts keep its nose (the refiner turns an axis, so a start turned by
        90° or more would bring the nose back at random); the second guess keeps its own.
        All starts go through the refiner together, one call per pass."""
        starts = [*restart_starts(proposals), self.second_peak_proposals(images, batch_size)]
        repeated = np.concatenate([images] * len(starts))
        refined = self.refinement.refine(
            repeated, np.concatenate(starts), batch_size=batch_size, views=self.restart_views
        )
        *from_proposal, from_second_peak = np.split(refined[-1], len(starts))
        return [nose_towards(boxes, proposals) for boxes in from_proposal] + [from_second_peak]

    def second_peak_proposals(self, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
        """The detector's boxes (N, 5) on images (N, 200, 200) at its heatmap's best cell
        more than `SECOND_PEAK_CLEARANCE` cells from the peak. The detector runs again on
        these images: the restarts need it only on the images whose box the verifier
        doubts, so that is cheaper than keeping every image's heatmap."""
        outputs = network_outputs(self.detector, images, batch_size)
        return second_peak_predictions(outputs, SECOND_PEAK_CLEARANCE)[0]

    def scored_starts(
        self,
        images: np.ndarray,
        proposals: np.ndarray,
        boxes: np.ndarray,
        scores: np.ndarray,
        batch_size: int = 128,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The boxes (S, N, 5) of every start of a restart on images (N, 200, 200), the
        refined boxes (N, 5) first and then their `restart_candidates` from the proposals
        (N, 5), and the verifier's scores (S, N) of them (those of the boxes given: scores
        (N,))."""
        restarts = np.stack(self.restart_candidates(images, proposals, batch_size))
        starts = np.concatenate([np.asarray(boxes, dtype=np.float64)[None], restarts])
        start_scores = np.concatenate(
            [
                np.asarray(scores, dtype=np.float64)[None],
                self.verifier_scores_of_sets(images, restarts, batch_size),
            ]
        )
        return starts, start_scores

    def candidates_to_judge(
        self,
        images: np.ndarray,
        starts: np.ndarray,
        start_scores: np.ndarray,
        batch_size: int = 128,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """From the refined boxes (S, N, 5) of S starts on images (N, 200, 200) and their
        verifier scores (S, N): the candidates (C, N, 5) to choose from, their verifier
        scores (C, N) and the log-likelihood ratios (C, N) of their fitted outlines.
        Without an `outline_weight` the candidates are the starts' boxes (no ratios: None);
        with one, the outlines fitted to them follow (C = 2·S), a start's box carrying its
        own fitted outline's ratio."""
        if self.outline_weight is None:
            return starts, start_scores, None
        return self.outline_candidates(images, starts, start_scores, batch_size)

    def outline_candidates(
        self,
        images: np.ndarray,
        starts: np.ndarray,
        start_scores: np.ndarray,
        batch_size: int = 128,
        line_free: bool | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The boxes (S, N, 5) of S starts on images (N, 200, 200) followed by the outlines
        fitted to them (C = 2·S candidates (C, N, 5)), the verifier's scores (C, N) of all
        (those of the starts given: (S, N)), and each candidate's log-likelihood ratio
        (C, N), a start's box with its own fitted outline's. The outlines are fitted on the
        line-free log ratios if `line_free` (None: if this stage's `line_free_fits`)."""
        line_free = self.line_free_fits if line_free is None else line_free
        fitted, log_ratios = fitted_outline_boxes(images, starts, line_free)
        candidates = np.concatenate([starts, fitted])
        scores = np.concatenate(
            [start_scores, self.verifier_scores_of_sets(images, fitted, batch_size)]
        )
        return candidates, scores, np.concatenate([log_ratios, log_ratios])

    def verifier_scores(
        self, images: np.ndarray, boxes: np.ndarray, batch_size: int = 128
    ) -> np.ndarray:
        """The verifier's probability (N,) that each box (N, 5) on images (N, 200, 200)
        scores (IoU above 0.7 with a ship)."""
        windows = verifier_windows(images, boxes)
        return network_outputs(self.verifier, windows, batch_size)[:, 0]

    def verifier_scores_of_sets(
        self, images: np.ndarray, boxes: np.ndarray, batch_size: int = 128
    ) -> np.ndarray:
        """The verifier's scores (S, N) of S sets of boxes (S, N, 5) on images (N, 200,
        200), all in one pass of the verifier."""
        repeated = np.concatenate([images] * len(boxes))
        flat = self.verifier_scores(repeated, np.concatenate(boxes), batch_size)
        return flat.reshape(len(boxes), len(images)).astype(np.float64)
