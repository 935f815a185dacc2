"""Whether a box is drawn: the presence gate and the votes that feed it (the detector's
heatmap peak, the classifier's and the verifier's probabilities)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spaceship_utils.core.runtime import network_outputs
from spaceship_utils.core.validation import check_count, check_images
from spaceship_utils.data.preprocessing import threshold_images
from spaceship_utils.detection.line_vote import (
    LineVote,
    check_gate_in_band,
    line_free_evidence,
    line_vote_features,
)

PRESENCE_THRESHOLD = 0.5
"""The seed's rule: the classifier's probability must reach this for a box to be reported."""


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


def gate_boxes(
    boxes: np.ndarray, presence: np.ndarray, threshold: float = PRESENCE_THRESHOLD
) -> np.ndarray:
    """Boxes (N, 5) where presence (N,) reaches `threshold`, NaN rows elsewhere."""
    return np.where((np.asarray(presence) >= threshold)[:, None], boxes, np.nan)


@dataclass(frozen=True)
class PresenceVote:
    """The presence stage: the detector's heatmap peak or, given a `classifier` (the
    seed's, on thresholded images), the mean of the two probabilities, gated at
    `presence_threshold`. Given `verified_presence_threshold` (None: the verifier does not
    vote), the verifier's score of each kept box joins the vote, gated at that threshold;
    given a `line_vote` too, the images whose three-way vote lies in its band get the line
    vote's presence instead."""

    classifier: object | None
    presence_threshold: float
    verified_presence_threshold: float | None = None
    line_vote: LineVote | None = None

    @property
    def voters(self) -> int:
        """How many probabilities `presence` averages: the detector's, and the classifier's
        if there is one."""
        return 1 if self.classifier is None else 2

    @property
    def verifier_votes(self) -> bool:
        """Whether the verifier's score of each kept box votes on presence."""
        return self.verified_presence_threshold is not None

    @property
    def gate_threshold(self) -> float:
        """The presence a box needs to be drawn: `verified_presence_threshold` when the
        verifier votes, else `presence_threshold`."""
        return self.verified_presence_threshold if self.verifier_votes else self.presence_threshold

    def classifier_presence(self, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
        """The classifier's probability (N,) that raw images (N, 200, 200) hold a ship."""
        if self.classifier is None:
            raise ValueError("this refined detector has no classifier to vote on presence")
        inputs = threshold_images(check_images(images).astype(np.float32))
        return network_outputs(self.classifier, inputs, batch_size)[:, 0]

    def presence(
        self, images: np.ndarray, detector_presence: np.ndarray, batch_size: int = 128
    ) -> np.ndarray:
        """The presence (N,) before the verifier votes: the detector's, or its
        `vote_presence` with the classifier's when there is one."""
        classifier = (
            None if self.classifier is None else self.classifier_presence(images, batch_size)
        )
        return gated_presence(detector_presence, classifier)

    def restart_eligible(self, presence: np.ndarray) -> np.ndarray:
        """Where (N,) a doubted box is worth restarting, given the presence (N,) before the
        verifier votes: where the gate will draw it or, when the verifier votes, where even
        a score of 1 can lift the vote to `verified_presence_threshold`. A `line_vote`, if
        given, may still draw a box below that, in its band; such a box keeps its first
        start."""
        if self.verifier_votes:
            return vote_can_reach(presence, self.voters, self.verified_presence_threshold)
        return np.asarray(presence) >= self.presence_threshold

    def voted_presence(
        self, images: np.ndarray, boxes: np.ndarray, presence: np.ndarray, scores: np.ndarray
    ) -> np.ndarray:
        """The presence (N,) once the verifier's scores (N,) of the boxes kept (N, 5) on
        images (N, 200, 200) join the vote `presence` (N,); with a `line_vote`, the images
        whose three-way vote lies in its band get the line vote's presence instead, from
        the outline fitted to the box kept once the noise lines are found."""
        voted = with_one_more_vote(presence, self.voters, scores)
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
