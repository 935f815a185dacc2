"""The shipped pipeline's recipe: every step that makes it from nothing, as data (`RECIPE`),
and `run_recipe`, which does the steps in order (`python -m spaceship_utils.reproduce`).

A step is one of five kinds: `Train` a network (its task's recipe with some changes,
perhaps starting from an earlier step's weights or reading its collected answers),
`Factor` a trained network's dense layer to a low rank (`networks.low_rank`), `Collect`
the pipeline's own answers for the verifier, `Fit` settings on validation images, and the
final `Check`, which scores the retrained pipeline against the shipped one
on the same validation images. Each step lives in its own folder under the chain's root;
a finished step is skipped, an unfinished one resumes (a training run from its checkpoint,
a collection at its next chunk), so the chain survives any stop, across days. Each step
carries the CPU hours it takes at full size on two cores (`expected_hours`)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from spaceship_utils.core.metrics import sample_ious
from spaceship_utils.data.generator import generate_batch
from spaceship_utils.detection.refined import RefinedDetectorPipeline
from spaceship_utils.evaluation.setting_fits import (
    fitted_outline_settings,
    fitted_presence_threshold,
    fitted_restart_below,
)
from spaceship_utils.evaluation.stage_gains import paired_gain, scores_of
from spaceship_utils.networks.low_rank import factored_network
from spaceship_utils.pretrained import load_pretrained, load_refined_detector_run, network_of_run
from spaceship_utils.training.hard_examples import (
    CHUNK_IMAGES,
    OWN_ANSWERS_SEED,
    chunk_path,
    write_own_answers,
)
from spaceship_utils.training.loop import train_model
from spaceship_utils.training.recipes import TrainingConfig
from spaceship_utils.training.tasks import build_network, task_inputs_and_targets, task_named

RECIPE_SEED = 8128
"""The validation images of the recipe's fits come from `default_rng([RECIPE_SEED, 0])`,
those of its final check from `default_rng([RECIPE_SEED, 1])`: a seed no training run,
collection or chapter draws from."""


@dataclass(frozen=True)
class Train:
    """Train the `task` network with its recipe (`training.tasks.TASKS`) and `changes` (any
    `TrainingConfig` field), from the final weights of step `starts_from` if given, with
    half of every batch the answers of collection `own_answers` if given."""

    name: str
    task: str
    purpose: str
    hours: float
    changes: dict = field(default_factory=dict)
    starts_from: str | None = None
    own_answers: str | None = None


@dataclass(frozen=True)
class Factor:
    """Factor the dense layer of the `task` network of step `starts_from` to `rank`
    (`low_rank.factored_network`), on the windows the task trains on, drawn from the
    recipe's seed."""

    name: str
    task: str
    purpose: str
    hours: float
    starts_from: str
    rank: int


@dataclass(frozen=True)
class Collect:
    """Collect the own answers of the pipeline with the verifier of step `verifier` and
    this `restart_below` on `chunks` chunks of fresh images from `seed`."""

    name: str
    purpose: str
    verifier: str
    restart_below: float
    seed: int
    hours: float
    chunks: int = 120


@dataclass(frozen=True)
class Fit:
    """Fit settings of the pipeline (with the verifier of step `verifier`, if any) on the
    recipe's validation images: `fit(model, images, labels)` returns them as a dict."""

    name: str
    purpose: str
    fit: Callable[[RefinedDetectorPipeline, np.ndarray, np.ndarray], dict]
    hours: float
    verifier: str | None = None


@dataclass(frozen=True)
class Check:
    """Score the retrained pipeline and the shipped one on the same validation images."""

    name: str
    purpose: str
    hours: float


Step = Train | Factor | Collect | Fit | Check


def _presence(model, images, labels) -> dict:
    return {"presence_threshold": fitted_presence_threshold(model, images, labels)}


def _restarts(model, images, labels) -> dict:
    return {"restart_below": fitted_restart_below(model, images, labels)}


_VERIFIER_CYCLE = {
    "epochs": 15,
    "learning_rate": 3e-4,
    "schedule": "cosine",
    "ema_momentum": None,
    "validation_samples": 6000,
}
"""The changes of the verifier's later cycles: short, a cosine decay from a lower rate, no
weight averaging, validated on 6,000 held-out own answers."""


RECIPE: tuple[Step, ...] = (
    Train("classifier", "classifier", "the seed's classifier, a vote on presence", 1.93),
    Train("detector", "detector", "the one-network detector (chapter 7)", 3.61),
    Train("refiner", "refiner", "the refiner's first cycle (chapter 9)", 1.29),
    Train(
        "refiner-second",
        "refiner",
        "its second cycle: fresh images, a lower rate",
        0.73,
        changes={"seed": 1, "epochs": 80, "learning_rate": 3e-4},
        starts_from="refiner",
    ),
    Fit("presence", "the threshold of the two-way vote (chapter 9)", _presence, 0.05),
    Train(
        "verifier",
        "verifier",
        "the verifier on made-up boxes (chapter 10)",
        0.55,
        starts_from="refiner-second",
    ),
    Collect(
        "own-answers",
        "the pipeline's own answers, to judge",
        "verifier",
        restart_below=0.995,
        seed=OWN_ANSWERS_SEED,
        hours=0.3,
    ),
    Train(
        "verifier-own",
        "verifier",
        "its second cycle, half on own answers",
        0.14,
        changes={"seed": 3, **_VERIFIER_CYCLE},
        starts_from="verifier",
        own_answers="own-answers",
    ),
    Collect(
        "own-answers-9",
        "own answers of the better verifier",
        "verifier-own",
        restart_below=0.8,
        seed=2720,
        hours=0.3,
    ),
    Train(
        "verifier-ninth",
        "verifier",
        "its third cycle, on those answers",
        0.16,
        changes={"seed": 5, **_VERIFIER_CYCLE},
        starts_from="verifier-own",
        own_answers="own-answers-9",
    ),
    Factor(
        "verifier-lean",
        "verifier",
        "its dense layer at rank 32 (chapter 12)",
        0.01,
        starts_from="verifier-ninth",
        rank=32,
    ),
    Fit(
        "restarts",
        "the restart threshold (chapter 10)",
        _restarts,
        0.12,
        verifier="verifier-lean",
    ),
    Fit(
        "outlines",
        "outline weight, three-way threshold (chapter 11)",
        fitted_outline_settings,
        0.1,
        verifier="verifier-lean",
    ),
    Check("check", "the retrained pipeline against the shipped one", 0.08),
)
"""The shipped refined detector from nothing (chapters 7-11): the classifier that votes on
presence, the detector, the refiner's two cycles, the presence threshold of their vote,
the verifier's three cycles (the last two on the pipeline's own answers, each collected by
the cycle before), the verifier's dense layer factored to rank 32, the restart threshold
and the outline settings, then the check."""


PIPELINE_STEPS = {
    "classifier": "classifier",
    "detector": "detector",
    "refiner": "refiner-second",
    "verifier": "verifier-lean",
}
"""Which step's network plays each role in the retrained pipeline."""


@dataclass(frozen=True)
class Budget:
    """How big each kind of step is: `training` changes every training run (empty: the
    recipe's sizes), `chunks` of `chunk_images` images per collection (None: the step's),
    the validation images of the fits and of the check, and the images whose windows a
    `Factor` step reads."""

    training: dict
    chunks: int | None
    chunk_images: int
    fit_images: int
    check_images: int
    factor_images: int


BUDGETS = {
    "full": Budget({}, None, CHUNK_IMAGES, fit_images=4096, check_images=4096, factor_images=16384),
    "tiny": Budget(
        {"epochs": 1, "steps_per_epoch": 2, "batch_size": 4, "validation_samples": 8},
        chunks=3,
        chunk_images=16,
        fit_images=48,
        check_images=48,
        factor_images=48,
    ),
}
"""The full recipe, and a tiny one that runs every step in a minute or two: the test that
keeps the chain from rotting (its networks learn nothing)."""


CHECK_STANDARD_ERRORS = 2.0
"""The check passes when the retrained pipeline scores no lower than the shipped one by more
than this many paired standard errors."""


def expected_hours(steps: tuple[Step, ...] = RECIPE) -> float:
    """CPU hours of the full recipe on two cores: the training steps as their recorded runs
    took, the collections as the shipped ones did (about 17 minutes), the fits and the check
    as measured on the shipped networks (2026-12-07, two-core Intel Xeon, other work
    running beside them)."""
    return sum(step.hours for step in steps)


def step_done(step: Step, root: Path, budget: Budget) -> bool:
    """Whether `step` has finished under `root`: its folder holds its result, written last
    (a training step's provenance naming the step, a fit's or the check's result.json)."""
    folder = root / step.name
    if isinstance(step, Train | Factor):
        provenance = folder / "provenance.json"
        return (
            provenance.is_file()
            and json.loads(provenance.read_text()).get("recipe_step") == step.name
        )
    if isinstance(step, Collect):
        chunks = budget.chunks or step.chunks
        return all(chunk_path(folder, index).is_file() for index in range(chunks))
    return (folder / "result.json").is_file()


class RecipeError(RuntimeError):
    """A chain folder that cannot go on as it is: made with another budget, or with steps
    done after a step that is not (made from an earlier version of it)."""


def run_recipe(
    root: str | Path,
    budget: str = "full",
    hours: float | None = None,
    until: str | None = None,
    steps: tuple[Step, ...] = RECIPE,
    log: Callable[[str], None] = print,
) -> dict | None:
    """Do the steps of the recipe that are not done yet, in order, under `root`, at this
    `budget` (a key of `BUDGETS`), for at most `hours` of wall time, up to and including
    step `until` if given. Returns the check's result once it has run, else None (stopped
    by the budget or by `until`): run it again to go on.

    A folder keeps the budget it was started with (`recipe.json`), and a step that is done
    after one that is not is refused (`RecipeError`): it was made from an earlier version
    of that step, so its folder must be deleted first."""
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {tuple(BUDGETS)}, got {budget!r}")
    if hours is not None and not hours > 0:
        raise ValueError(f"hours must be > 0, got {hours}")
    names = [step.name for step in steps]
    if until is not None and until not in names:
        raise ValueError(f"until must be one of the steps {names}, got {until!r}")
    root, sizes = Path(root).expanduser(), BUDGETS[budget]
    _check_budget(root, budget)
    _check_nothing_stale(steps, root, sizes)
    deadline = None if hours is None else time.monotonic() + 3600 * hours
    for number, step in enumerate(steps, start=1):
        heading = f"[{number}/{len(steps)}] {step.name}"
        if step_done(step, root, sizes):
            log(f"{heading}: done")
        else:
            log(f"{heading}: {type(step).__name__.lower()} (about {step.hours:g} h at full size)")
            left = None if deadline is None else (deadline - time.monotonic()) / 3600
            if (left is not None and left <= 0) or not _run_step(step, root, sizes, left, log):
                log(f"stopped before {step.name} finished; run the same command to resume")
                return None
        if step.name == until and step is not steps[-1]:
            return None
    return json.loads((root / steps[-1].name / "result.json").read_text())


def _check_budget(root: Path, budget: str) -> None:
    """Record the budget of a new chain folder; refuse another budget in an existing one."""
    record = root / "recipe.json"
    if record.is_file():
        started = json.loads(record.read_text())["budget"]
        if started != budget:
            raise RecipeError(
                f"{root} holds a chain run at the {started!r} budget, not {budget!r}: "
                "choose another folder (--root)"
            )
        return
    root.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"budget": budget}) + "\n")


def _check_nothing_stale(steps: tuple[Step, ...], root: Path, budget: Budget) -> None:
    """RecipeError if a step is done after one that is not."""
    done = [step_done(step, root, budget) for step in steps]
    if False in done:
        first = done.index(False)
        later = zip(steps[first + 1 :], done[first + 1 :], strict=True)
        stale = [step.name for step, is_done in later if is_done]
        if stale:
            raise RecipeError(
                f"in {root}, {', '.join(stale)} are done but {steps[first].name}, which comes "
                f"before them, is not: they were made from an earlier {steps[first].name}. "
                "Delete their folders to make them again from the new one"
            )


def retrained_pipeline(
    root: str | Path, verifier: str | None = PIPELINE_STEPS["verifier"]
) -> RefinedDetectorPipeline:
    """The pipeline of the chain under `root`: the networks of `PIPELINE_STEPS`, with the
    verifier of step `verifier` (None: no verifier), and every setting the chain's fits
    have written so far."""
    root = Path(root).expanduser()
    runs = {role: root / step for role, step in PIPELINE_STEPS.items()}
    return load_refined_detector_run(
        runs["detector"],
        runs["refiner"],
        classifier_run=runs["classifier"],
        verifier_run=None if verifier is None else root / verifier,
        **fitted_settings(root),
    )


def fitted_settings(root: str | Path) -> dict:
    """Every setting the `Fit` steps under `root` have written, in the recipe's order."""
    root, settings = Path(root).expanduser(), {}
    for step in RECIPE:
        path = root / step.name / "result.json"
        if isinstance(step, Fit) and path.is_file():
            settings |= json.loads(path.read_text())["settings"]
    return settings


def validation_images(count: int, purpose: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` generated images and labels for the fits (`purpose` 0) or the check (1)."""
    return generate_batch(count, np.random.default_rng([RECIPE_SEED, purpose]))


def _run_step(step: Step, root: Path, budget: Budget, hours: float | None, log) -> bool:
    """Do one step (or as much of it as `hours` allows); True once it is done."""
    folder = root / step.name
    if isinstance(step, Train):
        return _train(step, root, budget, hours, log)
    if isinstance(step, Factor):
        _factor(step, root, budget, log)
        return True
    if isinstance(step, Collect):
        model = retrained_pipeline(root, verifier=step.verifier)
        model = model.with_settings(restart_below=step.restart_below)
        deadline = None if hours is None else time.monotonic() + 3600 * hours
        chunks = budget.chunks or step.chunks
        return write_own_answers(
            model, folder, chunks, step.seed, log, budget.chunk_images, deadline
        )
    if isinstance(step, Fit):
        images, labels = validation_images(budget.fit_images, purpose=0)
        model = retrained_pipeline(root, verifier=step.verifier)
        settings = step.fit(model, images, labels)
        log(f"fitted on {len(images):,} validation images: {settings}")
        record = {"settings": settings, "images": len(images), "seed": RECIPE_SEED}
        _write_json(folder / "result.json", record)
        return True
    _write_json(folder / "result.json", _check(root, budget, log))
    return True


def step_config(step: Train, root: Path, budget: Budget) -> TrainingConfig:
    """The training run of `step` under `root`: its task's recipe, the step's changes, the
    budget's sizes, and the files of the steps it starts from."""
    config = replace(TrainingConfig.recipe(step.task), **(step.changes | budget.training))
    if step.starts_from is not None:
        config = replace(config, initial_weights=root / step.starts_from / "final.weights.h5")
    if step.own_answers is not None:
        config = replace(config, own_answers=root / step.own_answers)
    return config


def _train(step: Train, root: Path, budget: Budget, hours: float | None, log) -> bool:
    outcome = train_model(step_config(step, root, budget), root / step.name, hours=hours, log=log)
    if outcome.finished:
        provenance_path = root / step.name / "provenance.json"
        provenance = json.loads(provenance_path.read_text())
        provenance["recipe_step"] = step.name  # the step is done once this is written
        if step.starts_from is not None:
            provenance["initial_weights"]["recipe_step"] = step.starts_from
        _write_json(provenance_path, provenance)
    return outcome.finished


FACTOR_CHUNK = 2048
"""Images drawn at a time for a `Factor` step's windows."""

FACTOR_SEEDS = ([RECIPE_SEED, 2], [RECIPE_SEED, 3])
"""The seeds of a `Factor` step's images and of the boxes its windows are cut around."""


def factor_windows(task: str, count: int) -> np.ndarray:
    """The windows (N, 64, 64, 2) a `Factor` step reads: the examples `task` trains on, from
    `count` images drawn from `default_rng(FACTOR_SEEDS[0])` (its boxes from
    `FACTOR_SEEDS[1]`)."""
    images_rng, boxes_rng = (np.random.default_rng(seed) for seed in FACTOR_SEEDS)
    share, windows = task_named(task).ship_share, []
    for start in range(0, count, FACTOR_CHUNK):
        size = min(FACTOR_CHUNK, count - start)
        images, labels = generate_batch(size, images_rng, ship_probability=share)
        windows.append(task_inputs_and_targets(task, images, labels, rng=boxes_rng)[0])
    return np.concatenate(windows)


def _factor(step: Factor, root: Path, budget: Budget, log) -> None:
    """Write the factored network of `step` as a run folder: config.json, its weights (best
    and final), the history and the provenance of the run it factors, the latter with the
    rank and how it was made."""
    source, folder = root / step.starts_from, root / step.name
    windows = factor_windows(step.task, budget.factor_images)
    network, share = factored_network(
        network_of_run(source, step.task),
        lambda rank: build_network(step.task, rank=rank),
        windows,
        step.rank,
    )
    log(f"rank {step.rank} keeps {share:.1%} of the variance on {len(windows):,} windows")
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("best.weights.h5", "final.weights.h5"):
        network.save_weights(folder / name)
    config = json.loads((source / "config.json").read_text())
    design = config.get("detector_options", {}) | {"rank": step.rank}
    _write_json(folder / "config.json", config | {"detector_options": design})
    if (source / "history.csv").is_file():  # the curves of the run whose kept epoch it is
        shutil.copyfile(source / "history.csv", folder / "history.csv")
    provenance = json.loads((source / "provenance.json").read_text())
    provenance |= {
        "detector_options": design,
        "factored": {
            "from_step": step.starts_from,
            "rank": step.rank,
            "variance_kept": round(share, 4),
            "windows": len(windows),
            "seed": FACTOR_SEEDS[0],
        },
        "recipe_step": step.name,  # the step is done once this is written
    }
    _write_json(folder / "provenance.json", provenance)


def _check(root: Path, budget: Budget, log) -> dict:
    """The retrained pipeline against the shipped one on the check's validation images."""
    images, labels = validation_images(budget.check_images, purpose=1)
    ious = {
        "retrained": sample_ious(retrained_pipeline(root).predict(images), labels),
        "shipped": sample_ious(load_pretrained("refined_detector").predict(images), labels),
    }
    gain = paired_gain(ious["retrained"], ious["shipped"])
    passes = gain.gain >= -CHECK_STANDARD_ERRORS * gain.standard_error
    result = {
        "images": len(images),
        "seed": RECIPE_SEED,
        "scores": {name: float(scores_of(values)) for name, values in ious.items()},
        "gain": gain.gain,
        "standard_error": gain.standard_error,
        "passes": bool(passes),
        "settings": fitted_settings(root),
    }
    log(check_summary(result))
    return result


def check_summary(result: dict) -> str:
    """One line on the check's `result`: both scores, the paired gain and the verdict."""
    scores = result["scores"]
    verdict = "within" if result["passes"] else "NOT within"
    return (
        f"retrained {scores['retrained']:.4f} against shipped {scores['shipped']:.4f} on "
        f"{result['images']:,} validation images: {result['gain']:+.4f} (paired s.e. "
        f"{result['standard_error']:.4f}); {verdict} {CHECK_STANDARD_ERRORS:g} standard errors"
    )


def _write_json(path: Path, record: dict) -> None:
    """Write `record` to `path` whole or not at all (a kill mid-write leaves the old file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(record, indent=1) + "\n")
    partial.replace(path)
