"""The ways the book turns networks into boxes, and the presence gate they share.

`BaselinePipeline` is the seed's rule (a classifier decides, a regressor draws the box);
`DetectorPipeline` is chapter 7's single network, `RefinedDetectorPipeline` the same with
a second look at each box. All answer `.predict(images)`:
raw (N, 200, 200) images -> (N, 5) boxes, a NaN row where they see no ship.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .detector import decode_predictions, second_peak_predictions
from .geometry import rotation_matrices, wrap_angle
from .line_search import line_free_log_ratios
from .line_vote import (
    LineVote,
    check_gate_in_band,
    line_free_evidence,
    line_vote_features,
    log_odds,
)
from .metrics import best_presence_threshold
from .outline_fit import fit_outlines_to_maps, log_ratio_maps
from .preprocessing import denormalise_labels, threshold_images
from .refiner import (
    WINDOW_VIEWS,
    apply_refinement,
    average_view_corrections,
    crop_windows,
    window_views,
)
from .validation import LABEL_SIZE, check_count, check_fraction, check_images
from .verifier import verifier_windows

PRESENCE_THRESHOLD = 0.5
"""The seed's rule: the classifier's probability must reach this for a box to be reported."""


def network_outputs(network, inputs: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """A Keras network's outputs (N, ...) on inputs (N, ...), `batch_size` at a time.

    The same numbers as `network.predict(inputs, batch_size=batch_size)`, without the data
    pipeline `predict` builds at every call (some 45 to 90 ms of setting up on the book's
    2-core machine, more than the refiner's work on a few dozen windows): a refined
    detector calls its networks a dozen times per batch of images. Empty inputs give
    (0, ...) outputs."""
    batch_size = check_count(batch_size, "batch_size", minimum=1)
    if len(inputs) == 0:
        return np.zeros((0, *network.output_shape[1:]), np.float32)
    return np.concatenate(
        [
            np.asarray(network.predict_on_batch(inputs[start : start + batch_size]))
            for start in range(0, len(inputs), batch_size)
        ]
    )


@dataclass
class Predictions:
    """Everything a pipeline computes for (N,) images."""

    boxes: np.ndarray
    """(N, 5) boxes in px and rad; a NaN row where the classifier says no ship."""
    presence: np.ndarray
    """(N,) probability that a ship is present."""
    raw_boxes: np.ndarray
    """(N, 5) the regressor's box for every image, whatever the classifier says."""


def gated_predictions(raw_boxes: np.ndarray, presence: np.ndarray, threshold: float) -> Predictions:
    """The `Predictions` of raw boxes (N, 5) and presence (N,) once the gate at `threshold`
    drops the boxes whose presence falls short of it."""
    presence = np.asarray(presence, dtype=np.float64)
    boxes = gate_boxes(raw_boxes, presence, threshold)
    return Predictions(boxes=boxes, presence=presence, raw_boxes=raw_boxes)


class Pipeline:
    """What every pipeline shares: input checks, the empty batch, the presence gate."""

    def __init__(self, presence_threshold: float = PRESENCE_THRESHOLD):
        self.presence_threshold = check_fraction(presence_threshold, "presence_threshold")

    @property
    def networks(self) -> tuple:
        """The Keras models this pipeline runs, in order."""
        raise NotImplementedError

    @property
    def gate_threshold(self) -> float:
        """The presence a box needs to be drawn: `presence_threshold`."""
        return self.presence_threshold

    def raw_predictions(self, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """A box (N, 5) for every checked image (N, 200, 200) and the presence probability (N,)."""
        raise NotImplementedError

    def predict_details(self, images: np.ndarray, batch_size: int = 128) -> Predictions:
        """Probabilities and boxes for raw `make_data` images (N, 200, 200) or (200, 200)."""
        images = check_images(images)
        batch_size = check_count(batch_size, "batch_size", minimum=1)
        if len(images) == 0:
            return gated_predictions(np.zeros((0, LABEL_SIZE)), np.zeros(0), self.gate_threshold)
        raw_boxes, presence = self.raw_predictions(images.astype(np.float32), batch_size)
        return gated_predictions(raw_boxes, presence, self.gate_threshold)

    def predict(self, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
        """Raw images (N, 200, 200) -> boxes (N, 5) (x, y, yaw, width, height), NaN = no ship."""
        return self.predict_details(images, batch_size).boxes


class BaselinePipeline(Pipeline):
    """The seed's two-model rule: classifier says no ship -> NaN row, else the regressor's box."""

    def __init__(self, classifier, regressor, presence_threshold: float = PRESENCE_THRESHOLD):
        super().__init__(presence_threshold)
        self.classifier = classifier
        self.regressor = regressor

    @property
    def networks(self) -> tuple:
        return (self.classifier, self.regressor)

    def raw_predictions(self, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        inputs = threshold_images(images)
        presence = network_outputs(self.classifier, inputs, batch_size)[:, 0]
        scaled = network_outputs(self.regressor, inputs, batch_size)
        return denormalise_labels(np.asarray(scaled, dtype=np.float64)), presence


class DetectorPipeline(Pipeline):
    """The one-network detector of chapter 7: heatmap presence, else the box at its peak."""

    def __init__(self, network, presence_threshold: float = PRESENCE_THRESHOLD):
        super().__init__(presence_threshold)
        self.network = network

    @property
    def networks(self) -> tuple:
        return (self.network,)

    def raw_predictions(self, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        return decode_predictions(network_outputs(self.network, images, batch_size))


REFINER_PASSES = 5
"""How many times the refined detector corrects each box, each time on a window cut around
the last correction. Chosen on chapter 7's validation images: with `REFINER_VIEWS`, each
pass up to the fifth added at least 0.3 points there (chapter 7 shows the table)."""
REFINER_VIEWS = True
"""Whether the refined detector averages the refiner's answers on the four views of each
window (`refiner.WINDOW_VIEWS`): on chapter 7's validation images, almost a point at four
passes, for four times the refiner's (small) work."""


RESTART_TURNS = (np.pi / 4, np.pi / 2, 3 * np.pi / 4)
"""The axis turns (rad) from which the refined detector starts the refiner again on a box
its verifier doubts: with the proposal as it is, four axes 45° apart. Only the axis turns:
the window of a box depends on its larger side, not on which side is which."""
RESTART_SHIFTS = ((14.0, 0.0), (-14.0, 0.0), (0.0, 14.0), (0.0, -14.0))
"""The moves (px along the proposal's length, px across it) from which the refined detector
also starts the refiner again on a box its verifier doubts: the proposal 14 px forward,
back and to either side, its axis kept. A refiner can be lost in place, not only turned:
started elsewhere on the ship, it may find the outline it missed. Chapter 7 chose the
distance (6 to 22 px measured) on its validation images and 4,096 fresh ones."""
SECOND_PEAK_CLEARANCE = 2
"""How far from its heatmap's peak (cells along x or y, 8 px each) the refined detector
looks for the last start of a restart: the detector's box at the best cell outside that
square, its second guess of where the ship is. On chapter 7's validation images and 4,096
fresh ones, 2 cells did better than 4."""
RESTART_BELOW = 0.9
"""The verifier's score under which the refined detector restarts a box from its
`restart_candidates`: on chapter 7's validation images, about 15 % of them (17 % once the
verifier votes on presence, `VERIFIED_PRESENCE_THRESHOLD`), and the
best of the thresholds chapter 7 tried there and on 4,096 fresh images (its restart table
shows them; its cost table, what they cost). Each cycle of the verifier changes how much it
doubts, so each gets its own threshold (the first one's was 0.995, the second's 0.8)."""
VERIFIED_PRESENCE_THRESHOLD = None
"""The presence a refined detector's box needs once the verifier votes on presence too
(None: it does not vote); `load_pretrained` sets the value chapter 7 chose."""
VERIFIER_VOTE_THRESHOLD = 0.52
"""The presence threshold of chapter 7's intermediate pipeline "with the verifier's vote"
(restarts and the verifier's vote, no outline fits; not the shipped gate, which the
manifest sets with the outline fits): the best on chapter 7's 2,048 validation images
(seed 0). The chapter fits it again and prints both; its later tables use this value, so a
near-tie that tips the fit on another CPU changes the rows that show the fit, not the
tables built on it."""
RESTART_VIEWS = False
"""Whether the restarts average the refiner's answers over the four window views, as the
first start does (`REFINER_VIEWS`). On chapter 7's validation images one view scored as
well or better, for a quarter of the work."""
OUTLINE_WEIGHT = None
"""How much the log-likelihood ratio of a candidate's fitted outline (`outline_fit`) adds
to the verifier's log-odds when the refined detector picks among its restart candidates;
None: no outlines are fitted. `load_pretrained` sets the value chapter 7 chose."""
PLAIN_FITS_WEIGHT = 0.05
"""The outline weight chapter 7 chose for outlines fitted on the plain log ratios, before
it fitted them on the line-free ones; its line vote was fitted on the boxes kept with it."""
LINE_FREE_FITS = False
"""Whether the refined detector fits those outlines on the log ratios with the long noise
lines made neutral (`line_search.line_free_log_ratios`) instead of the plain ones
(`outline_fit.log_ratio_maps`); `load_pretrained` sets the value chapter 7 chose."""


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


def best_scored_boxes(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Boxes (starts, N, 5) scored (starts, N): each image's best-scored box (N, 5), the
    earliest start on a tie."""
    return boxes[np.argmax(scores, axis=0), np.arange(boxes.shape[1])]


class RefinedDetectorPipeline(DetectorPipeline):
    """The detector, then the refiner on a window around each of its boxes (`refiner`).

    Every box the detector proposes is corrected `passes` times by the refiner, which reads
    the image at full resolution around it; with `views`, each correction is the mean of
    the refiner's answers on the window's four `WINDOW_VIEWS` (four times the refiner's
    work). The presence is the detector's heatmap peak or, given a `classifier` (the seed's,
    on thresholded images), the mean of the two probabilities: a second opinion on whether
    there is a ship at all. Given a `verifier`, each refined box it scores below
    `restart_below` is refined again from the proposal turned by each of `RESTART_TURNS`,
    moved by each of `RESTART_SHIFTS`, and from the detector's second guess
    (`second_peak_proposals`), the same passes with `restart_views`; the box the verifier
    scores highest is kept. Given an `outline_weight` too, the generator's outline is
    fitted to each of those boxes (`outline_fit.fit_outlines`), the fitted boxes join the
    candidates, and the one kept is the best by `judged_scores`: the verifier's log-odds
    plus `outline_weight` times the log-likelihood ratio of the candidate's fitted outline
    (fitted on the log ratios with the long noise lines made neutral, with `line_free_fits`).
    Given `verified_presence_threshold`, the verifier also votes on presence: the presence
    is then the mean of the detector's, the classifier's and the verifier's score of the
    kept box, and a box needs `verified_presence_threshold` of it (`presence_threshold` is
    the threshold of the vote without the verifier). Given a `line_vote` too, the images
    whose three-way vote lies in its band get its presence instead (`voted_presence`).
    """

    def __init__(
        self,
        detector,
        refiner,
        presence_threshold: float = PRESENCE_THRESHOLD,
        passes: int = REFINER_PASSES,
        classifier=None,
        views: bool = REFINER_VIEWS,
        verifier=None,
        restart_below: float = RESTART_BELOW,
        restart_views: bool = RESTART_VIEWS,
        verified_presence_threshold: float | None = VERIFIED_PRESENCE_THRESHOLD,
        outline_weight: float | None = OUTLINE_WEIGHT,
        line_vote: LineVote | None = None,
        line_free_fits: bool = LINE_FREE_FITS,
    ):
        super().__init__(detector, presence_threshold)
        self.refiner = refiner
        self.passes = check_count(passes, "passes", minimum=0)
        self.classifier = classifier
        settings = (("views", views), ("restart_views", restart_views))
        for name, value in (*settings, ("line_free_fits", line_free_fits)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be True or False, got {value!r}")
        self.views = views
        self.restart_views = restart_views
        self.verifier = verifier
        self.restart_below = check_fraction(restart_below, "restart_below")
        self.verified_presence_threshold = (
            None
            if verified_presence_threshold is None
            else check_fraction(verified_presence_threshold, "verified_presence_threshold")
        )
        self.outline_weight = None if outline_weight is None else check_weight(outline_weight)
        if line_vote is not None and not isinstance(line_vote, LineVote):
            raise TypeError(f"line_vote must be a LineVote or None, got {type(line_vote).__name__}")
        self.line_vote = line_vote
        self.line_free_fits = line_free_fits

    @property
    def verifier_votes(self) -> bool:
        """Whether the verifier's score of each kept box votes on presence."""
        return self.verifier is not None and self.verified_presence_threshold is not None

    @property
    def presence_voters(self) -> int:
        """How many probabilities `presence` averages: the detector's, and the classifier's
        if there is one."""
        return 1 if self.classifier is None else 2

    @property
    def gate_threshold(self) -> float:
        """The presence a box needs to be drawn: `verified_presence_threshold` when the
        verifier votes, else `presence_threshold`."""
        return self.verified_presence_threshold if self.verifier_votes else self.presence_threshold

    @property
    def networks(self) -> tuple:
        extra = tuple(net for net in (self.classifier, self.verifier) if net is not None)
        return (self.network, self.refiner, *extra)

    @property
    def network_passes(self) -> tuple[int, ...]:
        """The detector (and the classifier) run once per image, the refiner once per pass
        and view, the verifier once per box (restarts, on doubted boxes only, not counted)."""
        refiner = self.refiner_windows(self.views)
        extra = tuple(1 for net in (self.classifier, self.verifier) if net is not None)
        return (1, refiner, *extra)

    def refiner_windows(self, views: bool) -> int:
        """The refiner's windows per box for one start: one per pass and view."""
        return self.passes * (len(WINDOW_VIEWS) if views else 1)

    def raw_predictions(self, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """The refined (and, with a verifier, restarted) box (N, 5) of every image
        (N, 200, 200), and the presence (N,) the gate reads (`gate_threshold`)."""
        boxes_by_pass, detector_presence = self.boxes_by_pass(images, self.passes, batch_size)
        presence = self.presence(images, detector_presence, batch_size)
        boxes = boxes_by_pass[-1]
        if self.verifier is None:
            return boxes, presence
        eligible = self.restart_eligible(presence)
        boxes, scores = self.restarted_boxes(images, boxes_by_pass[0], boxes, batch_size, eligible)
        if self.verifier_votes:
            presence = self.voted_presence(images, boxes, presence, scores)
        return boxes, presence

    def voted_presence(
        self, images: np.ndarray, boxes: np.ndarray, presence: np.ndarray, scores: np.ndarray
    ) -> np.ndarray:
        """The presence (N,) once the verifier's scores (N,) of the boxes kept (N, 5) on
        images (N, 200, 200) join the vote `presence` (N,); with a `line_vote`, the images
        whose three-way vote lies in its band get the line vote's presence instead, from
        the outline fitted to the box kept once the noise lines are found."""
        voted = with_one_more_vote(presence, self.presence_voters, scores)
        if self.line_vote is None:
            return voted
        if self.classifier is None:
            raise ValueError("the line vote reads the classifier's vote: this detector has none")
        check_gate_in_band(self.gate_threshold, self.line_vote.band)
        asked = np.flatnonzero(self.line_vote.in_band(voted))
        if asked.size:
            evidence = line_free_evidence(images[asked], boxes[asked])
            features = line_vote_features(presence[asked], scores[asked], evidence)
            voted[asked] = self.line_vote.presence(features, self.gate_threshold)
        return voted

    def restart_eligible(self, presence: np.ndarray) -> np.ndarray:
        """Where (N,) a doubted box is worth restarting, given the presence (N,) before the
        verifier votes: where the gate will draw it or, when the verifier votes, where even
        a score of 1 can lift the vote to `verified_presence_threshold`. A `line_vote` may
        still draw a box below that, in its band; such a box keeps its first start."""
        if self.verifier_votes:
            return vote_can_reach(presence, self.presence_voters, self.verified_presence_threshold)
        return np.asarray(presence) >= self.presence_threshold

    def boxes_by_pass(
        self, images: np.ndarray, passes: int, batch_size: int = 128
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """The boxes (N, 5) of raw images (N, 200, 200) before the refiner and after each of
        `passes` passes (a list of passes + 1 arrays, no presence gate), and the detector's
        presence (N,), before any vote."""
        images = check_images(images).astype(np.float32)
        boxes, presence = self.proposals(images, batch_size)
        return self.refine(images, boxes, passes, batch_size), np.asarray(presence, np.float64)

    def proposals(self, images: np.ndarray, batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """The detector's boxes (N, 5) on raw images (N, 200, 200), where the refiner starts,
        and its presence (N,)."""
        return super().raw_predictions(check_images(images).astype(np.float32), batch_size)

    def refine(
        self,
        images: np.ndarray,
        boxes: np.ndarray,
        passes: int,
        batch_size: int = 128,
        views: bool | None = None,
    ) -> list[np.ndarray]:
        """Boxes (N, 5) on images (N, 200, 200) before and after each of `passes` refiner
        passes (with four views or one; None: the model's `views`): a list of passes + 1
        arrays (N, 5)."""
        passes = check_count(passes, "passes")
        boxes_by_pass = [np.asarray(boxes, dtype=np.float64)]
        for _ in range(passes):
            windows = crop_windows(images, boxes_by_pass[-1])
            corrections = self.corrections(windows, batch_size, views)
            boxes_by_pass.append(apply_refinement(boxes_by_pass[-1], corrections))
        return boxes_by_pass

    def verifier_scores(
        self, images: np.ndarray, boxes: np.ndarray, batch_size: int = 128
    ) -> np.ndarray:
        """The verifier's probability (N,) that each box (N, 5) on images (N, 200, 200)
        scores (IoU above 0.7 with a ship)."""
        if self.verifier is None:
            raise ValueError("this refined detector has no verifier to score its boxes")
        windows = verifier_windows(images, boxes)
        return network_outputs(self.verifier, windows, batch_size)[:, 0]

    def second_peak_proposals(self, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
        """The detector's boxes (N, 5) on images (N, 200, 200) at its heatmap's best cell
        more than `SECOND_PEAK_CLEARANCE` cells from the peak. The detector runs again on
        these images: the restarts need it only on the images whose box the verifier
        doubts, so that is cheaper than keeping every image's heatmap."""
        outputs = network_outputs(self.network, images, batch_size)
        return second_peak_predictions(outputs, SECOND_PEAK_CLEARANCE)[0]

    def restart_candidates(
        self, images: np.ndarray, proposals: np.ndarray, batch_size: int = 128
    ) -> list[np.ndarray]:
        """The refined boxes (N, 5) of images (N, 200, 200) started from each of the
        `restart_starts` of the proposals (N, 5), then from the `second_peak_proposals`
        (`passes` passes with `restart_views`): one array per start. The boxes from the
        proposal's starts keep its nose (the refiner turns an axis, so a start turned by
        90° or more would bring the nose back at random); the second guess keeps its own.
        All starts go through the refiner together, one call per pass."""
        starts = [*restart_starts(proposals), self.second_peak_proposals(images, batch_size)]
        repeated = np.concatenate([images] * len(starts))
        refined = self.refine(
            repeated, np.concatenate(starts), self.passes, batch_size, self.restart_views
        )
        *from_proposal, from_second_peak = np.split(refined[-1], len(starts))
        return [nose_towards(boxes, proposals) for boxes in from_proposal] + [from_second_peak]

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
        (`judged_candidates`; the first on a tie); and the verifier's scores (N,) of the
        boxes kept."""
        scores, doubted = self.doubted_boxes(images, boxes, batch_size, eligible)
        best = np.array(boxes, dtype=np.float64)
        scores = np.asarray(scores, dtype=np.float64)
        if doubted.size == 0:
            return best, scores
        doubted_images = images[doubted]
        starts, start_scores = self.scored_starts(
            doubted_images, proposals[doubted], best[doubted], scores[doubted], batch_size
        )
        candidates, candidate_scores, judged = self.judged_candidates(
            doubted_images, starts, start_scores, batch_size
        )
        chosen = np.argmax(judged, axis=0)
        best[doubted] = candidates[chosen, np.arange(doubted.size)]
        scores[doubted] = candidate_scores[chosen, np.arange(doubted.size)]
        return best, scores

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

    def verifier_scores_of_sets(
        self, images: np.ndarray, boxes: np.ndarray, batch_size: int = 128
    ) -> np.ndarray:
        """The verifier's scores (S, N) of S sets of boxes (S, N, 5) on images (N, 200,
        200), all in one pass of the verifier."""
        repeated = np.concatenate([images] * len(boxes))
        flat = self.verifier_scores(repeated, np.concatenate(boxes), batch_size)
        return flat.reshape(len(boxes), len(images)).astype(np.float64)

    def judged_candidates(
        self,
        images: np.ndarray,
        starts: np.ndarray,
        start_scores: np.ndarray,
        batch_size: int = 128,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """From the refined boxes (S, N, 5) of S starts on images (N, 200, 200) and their
        verifier scores (S, N): the candidates (C, N, 5) to choose from, their verifier
        scores (C, N) and what the choice maximises (C, N). Without an `outline_weight` the
        candidates are the starts' boxes, chosen by their scores; with one, the outlines
        fitted to them follow (C = 2·S), and each candidate is judged by `judged_scores`,
        a start's box with its own fitted outline's log-likelihood ratio."""
        if self.outline_weight is None:
            return starts, start_scores, start_scores
        candidates, scores, log_ratios = self.outline_candidates(
            images, starts, start_scores, batch_size
        )
        return candidates, scores, judged_scores(scores, log_ratios, self.outline_weight)

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
        line-free log ratios if `line_free` (None: if the model's `line_free_fits`)."""
        line_free = self.line_free_fits if line_free is None else line_free
        fitted, log_ratios = fitted_outline_boxes(images, starts, line_free)
        candidates = np.concatenate([starts, fitted])
        scores = np.concatenate(
            [start_scores, self.verifier_scores_of_sets(images, fitted, batch_size)]
        )
        return candidates, scores, np.concatenate([log_ratios, log_ratios])

    def corrections(
        self, windows: np.ndarray, batch_size: int = 128, views: bool | None = None
    ) -> np.ndarray:
        """The refiner's corrections (N, 6) of windows (N, S, S, 2): its answer, or with
        `views` (None: the model's) the mean of its answers on the four views of each
        window."""
        if not (self.views if views is None else views):
            return network_outputs(self.refiner, windows, batch_size)
        answers = network_outputs(self.refiner, window_views(windows), batch_size)
        return average_view_corrections(answers)

    def classifier_presence(self, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
        """The classifier's probability (N,) that raw images (N, 200, 200) hold a ship."""
        if self.classifier is None:
            raise ValueError("this refined detector has no classifier to vote on presence")
        inputs = threshold_images(check_images(images).astype(np.float32))
        return network_outputs(self.classifier, inputs, batch_size)[:, 0]

    def presence(
        self, images: np.ndarray, detector_presence: np.ndarray, batch_size: int = 128
    ) -> np.ndarray:
        """The presence (N,) the pipeline gates on: the detector's, or its `vote_presence`
        with the classifier's when there is one."""
        classifier = (
            None if self.classifier is None else self.classifier_presence(images, batch_size)
        )
        return gated_presence(detector_presence, classifier)


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
    candidates and gates its own presence. Chapter 7 scores the stages of its pipeline on
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
        presence = first.presence(images, detector_presence, batch_size)
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
    scores = np.asarray(model.verifier_scores(images, boxes, batch_size), dtype=np.float64)
    doubted = scores < model.restart_below
    restarted = {name: doubted & v.restart_eligible(presence) for name, v in variants.items()}
    union = np.flatnonzero(np.any(list(restarted.values()), axis=0))
    fitted = {}  # line_free_fits -> (candidates, their scores, log ratios)
    if union.size:
        restarted_proposals = (
            model.proposals(images[union], batch_size)[0] if proposals is None else proposals[union]
        )
        starts, start_scores = model.scored_starts(
            images[union], restarted_proposals, boxes[union], scores[union], batch_size
        )
        fitting = {v.line_free_fits for v in variants.values() if v.outline_weight is not None}
        for line_free in sorted(fitting):
            fitted[line_free] = model.outline_candidates(
                images[union], starts, start_scores, batch_size, line_free
            )
    answers = {}
    for name, variant in variants.items():
        kept, kept_scores = np.array(boxes), scores.copy()
        chosen_images = np.flatnonzero(restarted[name][union])
        if chosen_images.size:
            if variant.outline_weight is None:  # the starts alone, by the verifier's scores
                candidates, candidate_scores = starts, start_scores
                judged = start_scores[:, chosen_images]
            else:
                candidates, candidate_scores, log_ratios = fitted[variant.line_free_fits]
                judged = judged_scores(
                    candidate_scores[:, chosen_images],
                    log_ratios[:, chosen_images],
                    variant.outline_weight,
                )
            chosen = np.argmax(judged, axis=0)
            kept[union[chosen_images]] = candidates[chosen, chosen_images]
            kept_scores[union[chosen_images]] = candidate_scores[chosen, chosen_images]
        answers[name] = (
            kept,
            variant.voted_presence(images, kept, presence, kept_scores)
            if variant.verifier_votes
            else presence,
        )
    return answers


def fitted_outline_boxes(
    images: np.ndarray, starts: np.ndarray, line_free: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The generator's outline fitted from each of S sets of boxes (S, N, 5) on images
    (N, 200, 200), on their plain log ratios or, `line_free`, with the long noise lines
    made neutral: the fitted boxes (S, N, 5) and their log-likelihood ratios (S, N)."""
    count, images_count = starts.shape[:2]
    owners = np.tile(np.arange(images_count), count)
    maps = line_free_log_ratios(images) if line_free else log_ratio_maps(images)
    fits = fit_outlines_to_maps(maps, starts.reshape(-1, LABEL_SIZE), owners)
    return fits.boxes.reshape(starts.shape), fits.log_ratios.reshape(count, images_count)


SCORE_CLIP = 1e-7
"""How close to 0 or 1 `judged_scores` lets a verifier score come before its log-odds: a
float32 sigmoid rounds to exactly 1 above a log-odds of about 17."""


def judged_scores(scores: np.ndarray, log_ratios: np.ndarray, weight: float) -> np.ndarray:
    """What the refined detector maximises when it picks a candidate: the verifier's
    log-odds of its score (any shape) plus `weight` times the log-likelihood ratio of its
    fitted outline (same shape)."""
    return log_odds(scores, SCORE_CLIP) + weight * np.asarray(log_ratios, dtype=np.float64)


def check_weight(weight: float, name: str = "outline_weight") -> float:
    """`weight` as a float if it is a finite number >= 0, else a ValueError naming it."""
    if isinstance(weight, bool) or not isinstance(weight, int | float | np.floating | np.integer):
        raise ValueError(f"{name} must be a number >= 0, got {weight!r}")
    if not np.isfinite(weight) or weight < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {weight}")
    return float(weight)


def vote_presence(detector_presence: np.ndarray, classifier_presence: np.ndarray) -> np.ndarray:
    """The mean (N,) of two presence probabilities (N,): the refined detector's vote."""
    return with_one_more_vote(detector_presence, 1, classifier_presence)


def with_one_more_vote(presence: np.ndarray, voters: int, vote: np.ndarray) -> np.ndarray:
    """The mean (N,) of `voters` probabilities, whose mean is `presence` (N,), and one more
    probability `vote` (N,): the presence once the verifier votes."""
    voters = check_count(voters, "voters", minimum=1)
    return (voters * np.asarray(presence, dtype=np.float64) + vote) / (voters + 1)


def vote_can_reach(presence: np.ndarray, voters: int, threshold: float) -> np.ndarray:
    """Where (N,) one more vote of at most 1 can lift the mean `presence` (N,) of `voters`
    probabilities to `threshold`: the images worth the verifier's restarts when it votes."""
    voters = check_count(voters, "voters", minimum=1)
    reachable = voters * np.asarray(presence, dtype=np.float64) + 1 - (voters + 1) * threshold
    return reachable >= -1e-9  # rounding must not skip an image the vote lifts


def gated_presence(
    detector_presence: np.ndarray, classifier_presence: np.ndarray | None
) -> np.ndarray:
    """The presence (N,) a refined detector gates on: the detector's alone without a
    classifier (None), else `vote_presence` of the two."""
    if classifier_presence is None:
        return np.asarray(detector_presence, dtype=np.float64)
    return vote_presence(detector_presence, classifier_presence)


def calibrated_presence_threshold(
    pipeline: Pipeline, images: np.ndarray, labels: np.ndarray
) -> tuple[float, float]:
    """The presence threshold that maximises the challenge score of `pipeline` on validation
    images (N, 200, 200) with labels (N, 5), and that score. Never choose it on test data.
    For a refined detector whose verifier votes, use `evaluate.verifier_vote_table`: its
    restarts depend on the threshold being chosen."""
    details = pipeline.predict_details(images)
    return best_presence_threshold(details.presence, details.raw_boxes, labels)


def gate_boxes(
    boxes: np.ndarray, presence: np.ndarray, threshold: float = PRESENCE_THRESHOLD
) -> np.ndarray:
    """Boxes (N, 5) where presence (N,) reaches `threshold`, NaN rows elsewhere."""
    return np.where((np.asarray(presence) >= threshold)[:, None], boxes, np.nan)
