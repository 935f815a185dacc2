"""What each stage of the shipped pipeline buys: the pipelines the book scores, and the
paired comparison that tells a stage's gain from the noise of the samples.

- `stage_variants`: the refined detector with its stages added one at a time (restarts,
  the verifier's vote, outline fits, line-free fits = the shipped pipeline).
- `leave_one_out_variants`: the shipped pipeline with one stage taken out.
- `evaluate_left_out`: those scored on the official samples, the shared work done once.
- `paired_gain`: the score difference of two pipelines on the same samples, with the
  standard error of that difference from a paired bootstrap over samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from spaceship_utils.core.metrics import IOU_THRESHOLD
from spaceship_utils.core.tables import format_table
from spaceship_utils.core.validation import check_count
from spaceship_utils.detection.candidates import PLAIN_FITS_WEIGHT
from spaceship_utils.detection.refined import VERIFIER_VOTE_THRESHOLD, RefinedDetectorPipeline
from spaceship_utils.evaluation.harness import Evaluation, evaluate_model, evaluate_variants

SHIPPED = "with line-free fits"
"""The name the book gives the shipped pipeline among `stage_variants`."""

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 2026


def stage_variants(shipped: RefinedDetectorPipeline) -> dict[str, RefinedDetectorPipeline]:
    """The shipped refined detector (with its verifier) as its stages join one at a time,
    each a `with_settings` copy: restarts alone, then the verifier's presence vote, outline
    fits on the plain log ratios, and last the outlines fitted on the line-free maps (the
    shipped pipeline itself)."""
    restarts_alone = shipped.with_settings(outline_weight=None, verified_presence_threshold=None)
    return {
        "with restarts": restarts_alone,
        "with the verifier's vote": restarts_alone.with_settings(
            verified_presence_threshold=VERIFIER_VOTE_THRESHOLD
        ),
        "with outline fits": shipped.with_settings(
            line_free_fits=False, outline_weight=PLAIN_FITS_WEIGHT
        ),
        SHIPPED: shipped,
    }


LEFT_OUT = {
    "restarts": ("without restarts", {"restart_below": 0.0}),
    "the verifier's vote": ("without the verifier's vote", {"verified_presence_threshold": None}),
    "outline fits": ("without outline fits", {"outline_weight": None, "line_free_fits": False}),
    "line-free fits": (
        "with outline fits",
        {"line_free_fits": False, "outline_weight": PLAIN_FITS_WEIGHT},
    ),
    "the classifier's vote": ("without the classifier's vote", {"classifier": None}),
}
"""Each stage of the shipped pipeline: the name of the pipeline without it, and the
settings that take it out. Without line-free fits the outlines are fitted on the plain log
ratios with their own weight, which is `stage_variants`' 'with outline fits'."""


def leave_one_out_variants(shipped: RefinedDetectorPipeline) -> dict[str, RefinedDetectorPipeline]:
    """The shipped pipeline with one stage taken out, by the pipeline names of `LEFT_OUT`."""
    return {name: shipped.with_settings(**changes) for name, changes in LEFT_OUT.values()}


def stage_key(stage: str) -> str:
    """A `LEFT_OUT` stage's name as a recorded value's key: "the verifier's vote" ->
    "verifier_vote", "line-free fits" -> "line_free_fits"."""
    if stage not in LEFT_OUT:
        raise ValueError(f"no stage {stage!r}; the stages are {list(LEFT_OUT)}")
    return stage.removeprefix("the ").replace("'s", "").replace(" ", "_").replace("-", "_")


AFTER_THE_CANDIDATES = {
    "verified_presence_threshold",
    "line_vote",
    "outline_weight",
    "line_free_fits",
}
"""Settings that act after the restarts: variants that differ only in them share their work
(`harness.evaluate_variants`)."""


def evaluate_left_out(
    shipped: RefinedDetectorPipeline,
    samples: int = 10_000,
    seed: int = 0,
    known: Mapping[str, Evaluation] | None = None,
    recorded: bool = False,
) -> dict[str, Evaluation]:
    """The evaluation of the shipped pipeline without each stage, by the stage names of
    `LEFT_OUT`, on `samples` official samples after np.random.seed(seed). Pipelines in
    `known` (evaluations by pipeline name on the same samples) are not scored again; its
    'refined detector', if there, is reused by the variants. With `recorded`, each
    pipeline's recorded predictions are read where they exist (`evaluation.recorded`)."""
    known = dict(known or {})
    changes_of = dict(LEFT_OUT.values())
    pipelines = {
        name: model for name, model in leave_one_out_variants(shipped).items() if name not in known
    }
    shared = {
        name: model
        for name, model in pipelines.items()
        if set(changes_of[name]) <= AFTER_THE_CANDIDATES
    }
    if shared:
        known |= evaluate_variants(
            shared,
            samples,
            seed,
            gallery_size=0,
            refined=known.get("refined detector"),
            recorded=recorded,
        )
    for name, model in pipelines.items():
        if name not in shared:
            known[name] = evaluate_model(
                model, samples, seed, gallery_size=0, recorded=name if recorded else None
            )
    return {stage: known[name] for stage, (name, _) in LEFT_OUT.items()}


def scores_of(ious: np.ndarray) -> np.ndarray:
    """The challenge score of each row of per-sample IoUs (..., N): the share above 0.7
    among the samples that are scored (NaN = a true negative, left out)."""
    scored = ~np.isnan(ious)
    return np.sum(np.nan_to_num(ious) > IOU_THRESHOLD, axis=-1) / np.sum(scored, axis=-1)


@dataclass(frozen=True)
class PairedGain:
    """The score of `with_stage` minus that of `without`, on the same samples."""

    gain: float
    standard_error: float
    samples_won: int
    """Samples a hit with the stage and not without it."""
    samples_lost: int

    @property
    def resolved(self) -> bool:
        """True when the gain is at least two paired standard errors."""
        return self.gain >= 2 * self.standard_error


def paired_gain(
    with_stage: np.ndarray,
    without: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> PairedGain:
    """The gain of a stage from the per-sample IoUs (N,) of the same N samples with it and
    without it (NaN where a sample is not scored). The standard error is a paired bootstrap:
    each of `resamples` draws the N samples with replacement and recomputes both scores on
    the same draw, so a sample's own difficulty cancels, and which samples are true
    negatives is decided again in each draw, as the score does."""
    with_stage, without = (np.asarray(ious, dtype=np.float64) for ious in (with_stage, without))
    if with_stage.shape != without.shape or with_stage.ndim != 1:
        raise ValueError(
            f"expected the IoUs of the same samples, shapes (N,), got {with_stage.shape} "
            f"and {without.shape}"
        )
    resamples = check_count(resamples, "resamples", minimum=2)
    draws = np.random.default_rng(seed).integers(0, len(with_stage), (resamples, len(with_stage)))
    differences = scores_of(with_stage[draws]) - scores_of(without[draws])
    hit_with, hit_without = (np.nan_to_num(ious) > IOU_THRESHOLD for ious in (with_stage, without))
    return PairedGain(
        gain=float(scores_of(with_stage) - scores_of(without)),
        standard_error=float(differences.std()),
        samples_won=int(np.sum(hit_with & ~hit_without)),
        samples_lost=int(np.sum(~hit_with & hit_without)),
    )


def stage_gain_table(shipped_ious: np.ndarray, without: dict[str, np.ndarray]) -> str:
    """One row per stage, from the per-sample IoUs of the shipped pipeline and of the
    pipeline without each stage (by stage name): the score without it, the stage's paired
    gain and its standard error, samples won and lost, and whether the gain is at least
    two standard errors."""
    rows = []
    for stage, ious in without.items():
        paired = paired_gain(shipped_ious, ious)
        rows.append(
            (
                stage,
                f"{scores_of(ious):.4f}",
                f"{paired.gain:+.4f}",
                f"{paired.standard_error:.4f}",
                f"{paired.samples_won} / {paired.samples_lost}",
                "yes" if paired.resolved else "no",
            )
        )
    return format_table(
        ("stage left out", "score without", "gain", "paired s.e.", "won / lost", ">= 2 s.e."),
        rows,
    )
