"""A fourth witness on presence: the outline's likelihood once the noise lines are found.

Not part of the shipped pipeline: chapter 12 measured its gain on the official samples under
two paired standard errors, and chapter 11 builds it as an exercise. A refined detector
still takes one (`RefinedSettings.line_vote`).

The refined detector's three-way vote (detector, classifier, verifier) still calls about
one image in seventy-five wrong. The generator's outline model (`outline_fit`) could settle
most of those calls, but a fitted outline on an empty image runs along a noise line. With
the long lines found and made neutral (`line_search.line_free_log_ratios`), the outline
fitted from the box the pipeline kept says how much more likely "a ship here" is than
"nothing here", from pixels the networks judged only as a whole.

`LineVote` turns that evidence, with the two-way vote and the verifier's score, into a
presence probability: a logistic regression fitted on validation images
(`fit_line_vote`). The line search and the fit cost some 8 ms per image, so the pipeline
asks only where the three-way vote is in doubt (`LineVote.band`) and keeps the vote's
answer elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

from spaceship_utils.core.metrics import best_presence_threshold
from spaceship_utils.core.validation import (
    check_boxes,
    check_fraction,
    check_images,
    check_same_length,
    has_box,
)
from spaceship_utils.detection.line_search import line_free_log_ratios
from spaceship_utils.detection.outline_fit import fit_outlines_to_maps

LINE_VOTE_BAND = (0.3, 0.8)
"""The three-way votes [low, high) for which a refined detector asks its line vote: 8 to
10 % of the images on the sets chapter 11 measured, where the narrower [0.4, 0.7) lost a
little and the whole range gained nothing."""


EVIDENCE_RANGE = (-50.0, 150.0)
"""Where the outline evidence (a log-likelihood ratio) is clipped before it is scaled by
`EVIDENCE_SCALE`: an empty image's fit may fail outright (`outline_fit.FAILED_FIT`), and a
clear ship's ratio says no more above 150 than at it."""


EVIDENCE_SCALE = 50.0
"""What the clipped evidence is divided by, so that the regression's three features are
of similar size (the other two are log-odds)."""


PROBABILITY_CLIP = 1e-6
"""How close to 0 or 1 a probability may come before its log-odds are taken."""


CHUNK = 256
"""Images whose line-free maps `line_free_evidence` holds at once (160 kB each)."""


FEATURES = ("two-way vote", "verifier score", "line-free outline evidence")
"""What the regression reads, in order (`line_vote_features`)."""


def log_odds(probabilities: np.ndarray, clip: float = PROBABILITY_CLIP) -> np.ndarray:
    """log(p / (1 - p)) of probabilities (any shape), kept `clip` away from 0 and 1."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), clip, 1 - clip)
    return np.log(p / (1 - p))


def line_free_evidence(images: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The log-likelihood ratio (N,) of the generator's outline fitted from each box (N, 5)
    on its raw image (N, 200, 200), the long noise lines made neutral first."""
    images = check_images(images)
    boxes = check_boxes(boxes, "boxes")
    check_same_length(images=images, boxes=boxes)
    evidence = [
        fit_outlines_to_maps(
            line_free_log_ratios(images[first : first + CHUNK]), boxes[first : first + CHUNK]
        ).log_ratios
        for first in range(0, len(images), CHUNK)
    ]
    return np.concatenate([np.zeros(0), *evidence])


def line_vote_features(
    two_way_presence: np.ndarray, verifier_scores: np.ndarray, evidence: np.ndarray
) -> np.ndarray:
    """The regression's features (N, 3), `FEATURES`: the log-odds of the detector's and
    classifier's mean presence (N,) and of the verifier's score (N,) of the box kept, and
    the `line_free_evidence` (N,) clipped to `EVIDENCE_RANGE` over `EVIDENCE_SCALE`."""
    inputs = {
        "two_way_presence": np.asarray(two_way_presence, dtype=np.float64),
        "verifier_scores": np.asarray(verifier_scores, dtype=np.float64),
        "evidence": np.asarray(evidence, dtype=np.float64),
    }
    check_same_length(**inputs)
    for name, values in inputs.items():
        if np.isnan(values).any():
            raise ValueError(f"{name} holds NaN: a line vote needs a number for every image")
    two_way_presence, verifier_scores, evidence = inputs.values()
    scaled = np.clip(evidence, *EVIDENCE_RANGE) / EVIDENCE_SCALE
    return np.column_stack([log_odds(two_way_presence), log_odds(verifier_scores), scaled])


def presence_in_band(presence: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    """Where (N,) the presence (N,) lies in the band [low, high)."""
    presence = np.asarray(presence, dtype=np.float64)
    return (presence >= band[0]) & (presence < band[1])


def check_gate_in_band(gate_threshold: float, band: tuple[float, float]) -> None:
    """A ValueError unless the gate threshold lies strictly inside the band (low, high),
    where `LineVote.presence` can map the vote's probability on both sides of it."""
    low, high = band
    if not low < gate_threshold < high:
        raise ValueError(
            f"the gate threshold {gate_threshold} must lie inside the line vote's band "
            f"({low:g}, {high:g})"
        )


@dataclass(frozen=True)
class LineVote:
    """A logistic regression on `line_vote_features`, asked where the three-way vote lies
    in `band`. Its intercept already holds the threshold chosen for it: its probability
    reaches the pipeline's gate (`verified_presence_threshold`) exactly where the
    regression's own probability reaches that threshold, so that its `presence` can stand
    in for the vote's."""

    coefficients: tuple[float, float, float]
    intercept: float
    band: tuple[float, float] = LINE_VOTE_BAND

    def __post_init__(self):
        coefficients = np.asarray(self.coefficients, dtype=np.float64)
        if coefficients.shape != (len(FEATURES),) or not np.isfinite(coefficients).all():
            raise ValueError(
                f"coefficients must be {len(FEATURES)} finite numbers ({', '.join(FEATURES)}), "
                f"got {self.coefficients!r}"
            )
        if not np.isfinite(self.intercept):
            raise ValueError(f"intercept must be a finite number, got {self.intercept!r}")
        if len(self.band) != 2:
            raise ValueError(f"band must be (low, high), got {self.band!r}")
        low, high = (check_fraction(edge, "band") for edge in self.band)
        if low >= high:
            raise ValueError(f"band must be (low, high) with low < high, got {self.band!r}")
        object.__setattr__(self, "coefficients", tuple(float(c) for c in coefficients))
        object.__setattr__(self, "intercept", float(self.intercept))
        object.__setattr__(self, "band", (low, high))

    def __str__(self) -> str:
        pairs = zip(FEATURES, self.coefficients, strict=True)
        weights = ", ".join(f"{name} {c:.2f}" for name, c in pairs)
        low, high = self.band
        return f"weights {weights}; intercept {self.intercept:.2f}; asked in [{low:g}, {high:g})"

    def in_band(self, presence: np.ndarray) -> np.ndarray:
        """Where (N,) the three-way vote (N,) lies in `band`: the images the vote asks."""
        return presence_in_band(presence, self.band)

    def probability(self, features: np.ndarray) -> np.ndarray:
        """The regression's probability (N,) of a ship, its threshold folded in, for images
        with `line_vote_features` (N, 3)."""
        logits = np.asarray(features, dtype=np.float64) @ np.array(self.coefficients)
        return 1 / (1 + np.exp(-(logits + self.intercept)))

    def presence(self, features: np.ndarray, gate_threshold: float) -> np.ndarray:
        """The presence (N,) that images with `line_vote_features` (N, 3), all in the band,
        get from this vote: its `probability` mapped into the band, linearly on either side
        of `gate_threshold`, which stays where it is. So the vote decides which images the
        gate keeps, and ranks them among themselves, but an image it decides never changes
        places with one outside the band (the ranked AP ranks images by presence)."""
        check_gate_in_band(gate_threshold, self.band)
        low, high = self.band
        p = self.probability(features)
        below = low + (gate_threshold - low) * p / gate_threshold
        above = gate_threshold + (high - gate_threshold) * (p - gate_threshold) / (
            1 - gate_threshold
        )
        return np.where(p < gate_threshold, below, above)

    def decided_presence(
        self, three_way: np.ndarray, features: np.ndarray, gate_threshold: float
    ) -> np.ndarray:
        """The presence (N,) once this vote decides where the three-way vote (N,) lies in
        its band, from every image's `line_vote_features` (N, 3); elsewhere the three-way
        vote stands."""
        three_way = np.asarray(three_way, dtype=np.float64)
        return np.where(self.in_band(three_way), self.presence(features, gate_threshold), three_way)

    def as_dict(self) -> dict:
        """The vote as plain numbers, for the weights manifest."""
        return {
            "coefficients": list(self.coefficients),
            "intercept": self.intercept,
            "band": list(self.band),
        }

    @classmethod
    def from_dict(cls, record: dict) -> LineVote:
        """The vote `as_dict` wrote, or a ValueError naming what is missing."""
        missing = [key for key in ("coefficients", "intercept", "band") if key not in record]
        if missing:
            raise ValueError(f"a line vote needs {', '.join(missing)}; got {sorted(record)}")
        return cls(tuple(record["coefficients"]), record["intercept"], tuple(record["band"]))


def fit_line_vote(
    features: np.ndarray,
    boxes: np.ndarray,
    presence: np.ndarray,
    labels: np.ndarray,
    gate_threshold: float,
    band: tuple[float, float] = LINE_VOTE_BAND,
) -> tuple[LineVote, float, float]:
    """Fit the line vote on validation images: a logistic regression (scikit-learn's, its
    default L2 penalty) of whether each image holds a ship on its `line_vote_features`
    (N, 3), on every image; then its threshold, the one that maximises the challenge score
    of the boxes (N, 5) when it decides where the three-way `presence` (N,) lies in `band`
    and the gate at `gate_threshold` decides elsewhere. Returns the `LineVote` (its
    intercept moved so that its probability meets `gate_threshold` where the regression's
    meets its threshold), that threshold, and the score there."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[1] != len(FEATURES):
        raise ValueError(
            f"features must be (N, {len(FEATURES)}), from line_vote_features; got {features.shape}"
        )
    boxes = check_boxes(boxes, "boxes")
    labels = check_boxes(labels, "labels")
    check_same_length(features=features, boxes=boxes, presence=np.asarray(presence), labels=labels)
    gate_threshold = check_fraction(gate_threshold, "gate_threshold")
    check_gate_in_band(gate_threshold, band)
    has_ship = has_box(labels)
    if has_ship.all() or not has_ship.any():
        raise ValueError("fit_line_vote needs images with a ship and images without one")
    regression = LogisticRegression(C=1.0, max_iter=1000).fit(features, has_ship)
    probability = regression.predict_proba(features)[:, 1]
    in_band = presence_in_band(presence, band)
    # Outside the band the vote's own call, which every candidate threshold in (0, 1) keeps.
    decider = np.where(in_band, probability, (np.asarray(presence) >= gate_threshold) * 1.0)
    threshold, score = best_presence_threshold(decider, boxes, labels)
    intercept = float(regression.intercept_[0]) - log_odds(threshold) + log_odds(gate_threshold)
    vote = LineVote(tuple(regression.coef_[0]), float(intercept), band)
    return vote, threshold, score
