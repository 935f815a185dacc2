"""The refined detector: the detector's box corrected by the refiner, restarted where the
verifier doubts it, and chosen among candidates by one rule (`candidates`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from spaceship_utils.core.validation import check_count, check_fraction, check_images
from spaceship_utils.detection.candidates import (
    LINE_FREE_FITS,
    OUTLINE_WEIGHT,
    check_weight,
)
from spaceship_utils.detection.line_vote import (
    LineVote,
)
from spaceship_utils.detection.pipelines import DetectorPipeline
from spaceship_utils.detection.presence import (
    PRESENCE_THRESHOLD,
    PresenceVote,
)
from spaceship_utils.detection.refinement import Refinement
from spaceship_utils.detection.restarts import (
    RESTART_BELOW,
    RESTART_VIEWS,
    Restarts,
)

REFINER_PASSES = 5
"""How many times the refined detector corrects each box, each time on a window cut around
the last correction. Chosen on chapter 9's validation images, where the passes' table
levels off at the fifth."""


REFINER_VIEWS = False
"""Whether the refined detector averages the refiner's answers on the four views of each
window (`windows.WINDOW_VIEWS`), for four times the refiner's work. Chapter 9's validation
table shows no gain it can resolve, and chapter 12's leave-one-out table measured the
four views at +0.06 points (paired standard error 0.08) for 10.7 ms per image: one view."""


VERIFIED_PRESENCE_THRESHOLD = None
"""The presence a refined detector's box needs once the verifier votes on presence too
(None: it does not vote); `load_pretrained` sets the value chapter 11 chose."""


VERIFIER_VOTE_THRESHOLD = 0.52
"""The presence threshold of the intermediate pipeline "with the verifier's vote" (restarts
and the verifier's vote, no outline fits; not the shipped gate, which the manifest sets with
the outline fits), chosen on chapter 10's 2,048 validation images (seed 0) when the refiner
still averaged four window views; with one view, 0.54 fits better there by about an image.
Chapter 10 fits it again and prints both; the later tables (chapter 12's stages) use this
value, so a near-tie that tips the fit on another CPU changes the rows that show the fit,
not the tables built on it."""


@dataclass(frozen=True)
class RefinedSettings:
    """The settings of a refined detector, checked once: every variant is a new one
    (`RefinedDetectorPipeline.with_settings`). See `RefinedDetectorPipeline` for what each
    does; the pipeline reads them as its own attributes (`model.passes`)."""

    presence_threshold: float = PRESENCE_THRESHOLD
    passes: int = REFINER_PASSES
    views: bool = REFINER_VIEWS
    restart_below: float = RESTART_BELOW
    restart_views: bool = RESTART_VIEWS
    verified_presence_threshold: float | None = VERIFIED_PRESENCE_THRESHOLD
    outline_weight: float | None = OUTLINE_WEIGHT
    line_vote: LineVote | None = None
    line_free_fits: bool = LINE_FREE_FITS

    def __post_init__(self):
        for name in ("views", "restart_views", "line_free_fits"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        checked = {
            "presence_threshold": check_fraction(self.presence_threshold, "presence_threshold"),
            "passes": check_count(self.passes, "passes", minimum=0),
            "restart_below": check_fraction(self.restart_below, "restart_below"),
        }
        if self.verified_presence_threshold is not None:
            checked["verified_presence_threshold"] = check_fraction(
                self.verified_presence_threshold, "verified_presence_threshold"
            )
        if self.outline_weight is not None:
            checked["outline_weight"] = check_weight(self.outline_weight)
        if self.line_vote is not None and not isinstance(self.line_vote, LineVote):
            raise TypeError(
                f"line_vote must be a LineVote or None, got {type(self.line_vote).__name__}"
            )
        for name, value in checked.items():
            object.__setattr__(self, name, value)


SETTING_NAMES = tuple(field.name for field in dataclasses.fields(RefinedSettings))
"""The names of a refined detector's settings."""


class RefinedDetectorPipeline(DetectorPipeline):
    """The detector, then its stages: `refinement` (the refiner on a window around each
    box), `vote` (presence: the detector's, with the classifier's and the verifier's
    votes) and, given a `verifier`, `restarts` (doubted boxes started again, one kept by
    `candidates.chosen_candidates`). `raw_predictions` runs them in that order.

    Every box the detector proposes is corrected `passes` times by the refiner, which reads
    the image at full resolution around it; with `views`, each correction is the mean of
    the refiner's answers on the window's four `WINDOW_VIEWS` (four times the refiner's
    work). The presence is the detector's heatmap peak or, given a `classifier` (the seed's,
    on thresholded images), the mean of the two probabilities: a second opinion on whether
    there is a ship at all. Given a `verifier`, each refined box it scores below
    `restart_below` is refined again from the proposal turned by each of `RESTART_TURNS`,
    moved by each of `RESTART_SHIFTS`, and from the detector's second guess, the same
    passes with `restart_views`; the box the verifier scores highest is kept. Given an
    `outline_weight` too, the generator's outline is fitted to each of those boxes
    (`outline_fit.fit_outlines`), the fitted boxes join the candidates, and the one kept is
    the best by `candidates.judged_scores`: the verifier's log-odds plus `outline_weight`
    times the log-likelihood ratio of the candidate's fitted outline (fitted on the log
    ratios with the long noise lines made neutral, with `line_free_fits`). Given
    `verified_presence_threshold`, the verifier also votes on presence: the presence is
    then the mean of the detector's, the classifier's and the verifier's score of the kept
    box, and a box needs `verified_presence_threshold` of it (`presence_threshold` is the
    threshold of the vote without the verifier). Given a `line_vote` too, the images whose
    three-way vote lies in its band get its presence instead (`PresenceVote.voted_presence`).
    The settings live in one frozen `RefinedSettings`; a variant is `with_settings`.
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
        self.network = detector
        self.refiner = refiner
        self.classifier = classifier
        self.verifier = verifier
        self.settings = RefinedSettings(
            presence_threshold=presence_threshold,
            passes=passes,
            views=views,
            restart_below=restart_below,
            restart_views=restart_views,
            verified_presence_threshold=verified_presence_threshold,
            outline_weight=outline_weight,
            line_vote=line_vote,
            line_free_fits=line_free_fits,
        )

    def with_settings(self, **changes) -> RefinedDetectorPipeline:
        """A variant of this refined detector: the same networks and settings but
        `changes` (settings of `RefinedSettings`, or `classifier` / `verifier`: another
        network or None), checked again."""
        networks = {"classifier": self.classifier, "verifier": self.verifier}
        unknown = set(changes) - set(networks) - set(SETTING_NAMES)
        if unknown:
            raise TypeError(f"not a setting of a refined detector: {', '.join(sorted(unknown))}")
        networks |= {name: changes.pop(name) for name in list(changes) if name in networks}
        settings = {name: getattr(self.settings, name) for name in SETTING_NAMES} | changes
        return RefinedDetectorPipeline(self.network, self.refiner, **networks, **settings)

    def __getattr__(self, name: str):
        settings = self.__dict__.get("settings")
        if settings is not None and name in SETTING_NAMES:
            return getattr(settings, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value) -> None:
        if name in SETTING_NAMES:
            raise AttributeError(
                f"{name} is a setting of the refined detector: make a variant with "
                f"with_settings({name}=...)"
            )
        super().__setattr__(name, value)

    @property
    def refinement(self) -> Refinement:
        """The refiner's stage, with this detector's `passes` and `views`."""
        return Refinement(self.refiner, self.passes, self.views)

    @property
    def vote(self) -> PresenceVote:
        """The presence stage: the classifier's vote and, with a verifier, its vote too."""
        verified = None if self.verifier is None else self.verified_presence_threshold
        return PresenceVote(self.classifier, self.presence_threshold, verified, self.line_vote)

    @property
    def restarts(self) -> Restarts:
        """The verifier's stage: restarts of the doubted boxes and the choice among them."""
        if self.verifier is None:
            raise ValueError("this refined detector has no verifier to score its boxes")
        return Restarts(
            self.network,
            self.refinement,
            self.verifier,
            self.restart_below,
            self.restart_views,
            self.outline_weight,
            self.line_free_fits,
        )

    @property
    def gate_threshold(self) -> float:
        """The presence a box needs to be drawn (`PresenceVote.gate_threshold`)."""
        return self.vote.gate_threshold

    @property
    def networks(self) -> tuple:
        extra = tuple(net for net in (self.classifier, self.verifier) if net is not None)
        return (self.network, self.refiner, *extra)

    @property
    def network_passes(self) -> tuple[int, ...]:
        """The detector (and the classifier) run once per image, the refiner once per pass
        and view, the verifier once per box (restarts, on doubted boxes only, not counted)."""
        refiner = self.refinement.windows_per_box()
        extra = tuple(1 for net in (self.classifier, self.verifier) if net is not None)
        return (1, refiner, *extra)

    def raw_predictions(self, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """The refined (and, with a verifier, restarted) box (N, 5) of every image
        (N, 200, 200), and the presence (N,) the gate reads (`gate_threshold`)."""
        boxes_by_pass, detector_presence = self.boxes_by_pass(images, self.passes, batch_size)
        vote = self.vote
        presence = vote.presence(images, detector_presence, batch_size)
        boxes = boxes_by_pass[-1]
        if self.verifier is None:
            return boxes, presence
        eligible = vote.restart_eligible(presence)
        boxes, scores = self.restarts.restarted_boxes(
            images, boxes_by_pass[0], boxes, batch_size, eligible
        )
        if vote.verifier_votes:
            presence = vote.voted_presence(images, boxes, presence, scores)
        return boxes, presence

    def boxes_by_pass(
        self, images: np.ndarray, passes: int, batch_size: int = 128
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """The boxes (N, 5) of raw images (N, 200, 200) before the refiner and after each of
        `passes` passes (a list of passes + 1 arrays, no presence gate), and the detector's
        presence (N,), before any vote."""
        images = check_images(images).astype(np.float32)
        boxes, presence = self.proposals(images, batch_size)
        boxes_by_pass = self.refinement.refine(images, boxes, passes, batch_size)
        return boxes_by_pass, np.asarray(presence, np.float64)

    def proposals(self, images: np.ndarray, batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """The detector's boxes (N, 5) on raw images (N, 200, 200), where the refiner starts,
        and its presence (N,)."""
        return super().raw_predictions(check_images(images).astype(np.float32), batch_size)
