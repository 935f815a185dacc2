"""Train a network: `python -m spaceship_utils.train TASK --run-dir DIR` (or `spaceship-train`).

Each task trains with its recipe (`training.tasks.TASKS`) unless told otherwise; the loop
is `training.loop.train_model`. A run stopped at any moment resumes from its checkpoint."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from spaceship_utils.networks.detector import DESIGNS
from spaceship_utils.training.loop import train_model
from spaceship_utils.training.recipes import DEFAULT_RUNS, SCHEDULES, TrainingConfig
from spaceship_utils.training.runs import (
    CHECKPOINT,
    RunDirectoryError,
)
from spaceship_utils.training.tasks import TASKS


def command_line() -> argparse.ArgumentParser:
    """The arguments of `spaceship-train` (`python -m spaceship_utils.train`)."""
    parser = argparse.ArgumentParser(prog="spaceship-train", description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=TASKS)
    parser.add_argument(
        "--run-dir", type=Path, help=f"where the run lives (default {DEFAULT_RUNS}/TASK)"
    )
    parser.add_argument("--hours", type=float, help="wall-clock budget; stop cleanly after it")
    for name in (
        "epochs",
        "steps_per_epoch",
        "batch_size",
        "validation_samples",
        "seed",
        "workers",
    ):
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=int,
            help="default: the task's recipe (training.tasks.TASKS)",
        )
    parser.add_argument("--learning-rate", type=float, help="default: the task's recipe")
    parser.add_argument(
        "--ema-momentum",
        type=float,
        help="keep a moving average of the weights (e.g. 0.999) and ship it; 0: none; "
        "default: the task's recipe",
    )
    parser.add_argument("--schedule", choices=SCHEDULES, help="default: the task's recipe")
    parser.add_argument(
        "--initial-weights",
        type=Path,
        metavar="FILE",
        help="start from this .weights.h5 file of the same network (a second training "
        "cycle); a verifier also starts from a refiner's file (its trunk)",
    )
    parser.add_argument(
        "--own-answers",
        type=Path,
        metavar="DIR",
        help="verifier only: a folder of the refined detector's own answers "
        "(python -m spaceship_utils.own_answers DIR) for half of every batch",
    )
    parser.add_argument(
        "--processes", action="store_true", help="make data in worker processes, not threads"
    )
    parser.add_argument(
        "--design",
        choices=sorted(DESIGNS),
        help="detector only: a named design (DESIGNS; default: the recipe's, 'fast')",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="detector only: change one design option, e.g. regression_radius=0 or "
        "dilations=[1,2,4] (repeatable)",
    )
    return parser


def detector_design(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict | None:
    """The detector's design from `--design` and each `--option KEY=JSON` (None for the
    other tasks); a parser error names a malformed option."""
    takes_design = TASKS[args.task].takes_design
    if (args.design or args.option) and not takes_design:
        parser.error("--design and --option apply to the detector only")
    design = dict(DESIGNS[args.design or "fast"]) if takes_design else None
    for option in args.option:
        key, equals, value = option.partition("=")
        if not equals:
            parser.error(f"--option {option!r}: write KEY=VALUE, e.g. regression_radius=0")
        try:
            design[key] = json.loads(value)
        except json.JSONDecodeError:
            parser.error(f"--option {option!r}: the value after '=' must be JSON, e.g. 0 or [1,2]")
    return design


def main(argv: list[str] | None = None) -> None:
    parser = command_line()
    args = parser.parse_args(argv)
    if args.hours is not None and not args.hours > 0:
        parser.error(f"--hours must be > 0, got {args.hours}")
    design = detector_design(args, parser)
    try:
        config = TrainingConfig.recipe(
            args.task,
            epochs=args.epochs,
            steps_per_epoch=args.steps_per_epoch,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            schedule=args.schedule,
            validation_samples=args.validation_samples,
            seed=args.seed,
            workers=args.workers,
            use_multiprocessing=args.processes or None,
            detector_options=design,
            ema_momentum=args.ema_momentum or None,  # 0 is handled below
            initial_weights=args.initial_weights,
            own_answers=args.own_answers,
        )
        if args.ema_momentum == 0:  # a recipe's averaging switched off
            config = replace(config, ema_momentum=None)
    except ValueError as error:
        parser.error(str(error))
    run_dir = args.run_dir or DEFAULT_RUNS / args.task
    starting = not (run_dir.expanduser() / CHECKPOINT).is_file()
    if starting and config.initial_weights and not Path(config.initial_weights).is_file():
        parser.error(f"--initial-weights: no file {config.initial_weights}")
    if starting and config.own_answers and not Path(config.own_answers).is_dir():
        parser.error(f"--own-answers: no folder {config.own_answers}")
    print(f"{args.task}: {config.training_images:,} images into {run_dir}", flush=True)
    try:
        train_model(config, run_dir, hours=args.hours, log=lambda line: print(line, flush=True))
    except RunDirectoryError as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
