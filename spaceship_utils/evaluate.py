"""Score a model on official samples: `python -m spaceship_utils.evaluate --model NAME`.

`--record` instead records what every pipeline the book scores predicts on the 10,000
official samples of seed 0 (`evaluation.recorded`), and the boxes chapters 9 to 11 study
on their validation images (`evaluation.recorded_runs`), skipping those already recorded:
about 40 minutes on two cores. The scoring is `evaluation.harness`; this is its
command line."""

from __future__ import annotations

import argparse

from spaceship_utils.detection.symmetry import view_averages
from spaceship_utils.evaluation.harness import (
    Evaluation,
    evaluate_model,
    evaluate_models,
    evaluate_variants,
)
from spaceship_utils.evaluation.outline_tables import outline_runs
from spaceship_utils.evaluation.recorded import pipeline_fingerprint, write_recording
from spaceship_utils.evaluation.recorded_runs import (
    LINE_FREE_OUTLINE_RUNS,
    OUTLINE_RUNS,
    RESTART_RUNS,
    find_runs,
    inputs_digest,
    refiner_runs_kind,
    write_runs,
)
from spaceship_utils.evaluation.refiner_tables import refiner_runs
from spaceship_utils.evaluation.restart_tables import restart_runs
from spaceship_utils.evaluation.stage_gains import (
    LEFT_OUT,
    evaluate_left_out,
    leave_one_out_variants,
    stage_variants,
)
from spaceship_utils.networks.detector import DESIGNS
from spaceship_utils.pretrained import PRETRAINED_MODELS, WeightsError, load_pretrained
from spaceship_utils.training.batches import validation_data

RECORDED_SAMPLES = 10_000
RECORDED_SEED = 0
HELD_OUT_SEED = 71207
"""The seed of chapter 12's headline score: used once, after every choice was made."""
HELD_OUT = "shipped pipeline, held-out seed"
AVERAGED_SAMPLES = 1_000
"""Chapter 8 scores its test-time averages on the first 1,000 official samples."""
RUNS_VALIDATION_SAMPLES = 2048
RUNS_VALIDATION_SEED = 0
"""The validation images of chapters 9 to 11 at their defaults, whose runs are recorded."""
REFINER_RUNS_PASSES = 6
"""Chapter 9's table of the refiner's passes goes one pass beyond the shipped five."""


def book_pipelines(
    samples: int = RECORDED_SAMPLES, seed: int = RECORDED_SEED
) -> dict[str, tuple[object, int, int]]:
    """Every pipeline whose predictions the chapters read from recordings, by its name:
    (pipeline, official samples, seed). The baseline, the detector, the refined detector
    without its verifier, its `stage_variants` and `leave_one_out_variants` on `samples`
    samples of `seed`; the detector's test-time averages on the first `AVERAGED_SAMPLES`;
    the shipped pipeline on the held-out seed."""
    shipped = load_pretrained("refined_detector")
    detector = load_pretrained("detector")
    on_seed = {
        "baseline": load_pretrained("baseline"),
        "detector": detector,
        "refined detector": shipped.with_settings(verifier=None),
        **stage_variants(shipped),
        **leave_one_out_variants(shipped),
    }
    averaged = view_averages(detector, "detector")
    return (
        {name: (model, samples, seed) for name, model in on_seed.items()}
        | {name: (model, AVERAGED_SAMPLES, seed) for name, model in averaged.items()}
        | {HELD_OUT: (shipped, samples, HELD_OUT_SEED)}
    )


def record_book_pipelines(samples: int = RECORDED_SAMPLES, seed: int = RECORDED_SEED) -> None:
    """Record every one of the `book_pipelines` that is not recorded yet. What is recorded
    already is read back (after its replay check), so that the variants can reuse the
    refined detector's work."""
    pipelines = book_pipelines(samples, seed)
    models = {name: model for name, (model, _, _) in pipelines.items()}
    shipped = models[HELD_OUT]
    singles = {name: models[name] for name in ("baseline", "detector", "refined detector")}
    known = evaluate_models(singles, samples, seed, gallery_size=0, recorded=True)
    _write_new(known, models, samples, seed)
    variants = evaluate_variants(
        stage_variants(shipped),
        samples,
        seed,
        gallery_size=0,
        refined=known["refined detector"],
        recorded=True,
    )
    _write_new(variants, models, samples, seed)
    left_out = evaluate_left_out(shipped, samples, seed, known=known | variants, recorded=True)
    by_name = {LEFT_OUT[stage][0]: result for stage, result in left_out.items()}
    _write_new(
        {name: result for name, result in by_name.items() if name not in variants},
        models,
        samples,
        seed,
    )
    averaged = view_averages(models["detector"], "detector")
    averages = evaluate_models(averaged, AVERAGED_SAMPLES, seed, gallery_size=0, recorded=True)
    _write_new(averages, models, AVERAGED_SAMPLES, seed)
    held_out = evaluate_model(shipped, samples, HELD_OUT_SEED, gallery_size=0, recorded=HELD_OUT)
    _write_new({HELD_OUT: held_out}, models, samples, HELD_OUT_SEED)


def record_validation_runs(
    samples: int = RUNS_VALIDATION_SAMPLES, seed: int = RUNS_VALIDATION_SEED
) -> None:
    """Record what chapters 9 to 11 compute on the detector's validation images of `seed`
    and is not recorded yet: the refined detector's passes without its verifier (chapter 9),
    the shipped pipeline's restart runs (chapter 10) and its outline runs, plain and
    line-free (chapter 11)."""
    shipped = load_pretrained("refined_detector")
    images = validation_data("detector", samples, seed, DESIGNS["fast"])[0]
    digest = inputs_digest(images)
    refined = shipped.with_settings(verifier=None)
    passes = refiner_runs(refined, images, REFINER_RUNS_PASSES, recorded=True)
    _write_new_runs(refiner_runs_kind(REFINER_RUNS_PASSES), passes, refined, digest)
    restarts = restart_runs(shipped, images, recorded=True)
    _write_new_runs(RESTART_RUNS, restarts, shipped, digest)
    for kind, line_free in ((OUTLINE_RUNS, False), (LINE_FREE_OUTLINE_RUNS, True)):
        outlines = outline_runs(shipped, images, restarts, line_free=line_free, recorded=True)
        _write_new_runs(kind, outlines, shipped, inputs_digest(images, restarts.boxes))


def _write_new_runs(kind: str, runs, model, digest: str) -> None:
    """Record runs of `kind` by `model` that were computed, not read back."""
    fingerprint = pipeline_fingerprint(model)
    if find_runs(kind, type(runs), fingerprint, digest) is None:
        print(f"recorded {kind} in {write_runs(kind, runs, fingerprint, digest)}", flush=True)


def _write_new(results: dict[str, Evaluation], models: dict, samples: int, seed: int) -> None:
    """Record the evaluations by pipeline name that were computed, not read back, each
    under the fingerprint of its pipeline in `models` (by the same name)."""
    for name, result in results.items():
        if not result.recorded:
            fingerprint = pipeline_fingerprint(models[name])
            path = write_recording(name, result, samples, seed, result.seconds, fingerprint)
            print(f"recorded {name!r} (score {result.score:.4f}) in {path}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="spaceship-evaluate", description="Score a pretrained model like the challenge."
    )
    parser.add_argument("--model", choices=PRETRAINED_MODELS, default="baseline")
    parser.add_argument("--samples", type=int, default=10_000, help="official samples to score")
    parser.add_argument("--seed", type=int, default=0, help="np.random.seed before generating")
    parser.add_argument(
        "--record",
        action="store_true",
        help="record every pipeline the book scores (10,000 samples, seed 0) instead",
    )
    args = parser.parse_args(argv)
    if args.record:
        record_book_pipelines()
        record_validation_runs()
        return
    if args.samples < 1:
        parser.error(f"--samples must be at least 1, got {args.samples}")
    if not 0 <= args.seed < 2**32:
        parser.error(f"--seed must be in [0, 2**32), got {args.seed}")
    try:
        model = load_pretrained(args.model)
    except WeightsError as error:
        parser.exit(1, f"{parser.prog}: error: {error}\n")
    result = evaluate_model(model, args.samples, args.seed)
    print(result.summary())
    print(result.classification_report())


if __name__ == "__main__":
    main()
