"""The rule that keeps one box among candidates (`chosen_candidates`), and the candidates
the generator's outline adds: an outline fitted from each start (`fitted_outline_boxes`)."""

from __future__ import annotations

import numpy as np

from spaceship_utils.core.validation import LABEL_SIZE
from spaceship_utils.detection.line_search import line_free_log_ratios
from spaceship_utils.detection.line_vote import (
    log_odds,
)
from spaceship_utils.detection.outline_fit import fit_outlines_to_maps, log_ratio_maps

OUTLINE_WEIGHT = None
"""How much the log-likelihood ratio of a candidate's fitted outline (`outline_fit`) adds
to the verifier's log-odds when the refined detector picks among its restart candidates;
None: no outlines are fitted. `load_pretrained` sets the value chapter 11 chose."""


PLAIN_FITS_WEIGHT = 0.05
"""The outline weight chapter 11 chose for outlines fitted on the plain log ratios, before
it fitted them on the line-free ones; its line vote was fitted on the boxes kept with it."""


LINE_FREE_FITS = False
"""Whether the refined detector fits those outlines on the log ratios with the long noise
lines made neutral (`line_search.line_free_log_ratios`) instead of the plain ones
(`outline_fit.log_ratio_maps`); `load_pretrained` sets the value chapter 11 chose."""


def chosen_candidates(
    candidates: np.ndarray,
    scores: np.ndarray,
    log_ratios: np.ndarray | None = None,
    outline_weight: float | None = None,
    restarted: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The rule by which the refined detector keeps one box among its candidates.

    Of C candidate boxes (C, N, 5) for each of N images, scored (C, N) (the verifier's
    probability that the box scores, or any number where higher is better), each image
    keeps the one with the highest score or, given an `outline_weight`, the highest
    `judged_scores` (the score's log-odds plus the weight times the log-likelihood ratio
    (C, N) of the candidate's fitted outline); the earliest candidate on a tie. Where
    `restarted` (N,) is False, the image keeps its first candidate. Returns the boxes kept
    (N, 5) and their scores (N,)."""
    judged = scores if outline_weight is None else judged_scores(scores, log_ratios, outline_weight)
    chosen = np.argmax(judged, axis=0)
    if restarted is not None:
        chosen = np.where(restarted, chosen, 0)
    images = np.arange(chosen.size)
    return candidates[chosen, images], scores[chosen, images]


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
