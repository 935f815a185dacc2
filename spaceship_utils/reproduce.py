"""Retrain the shipped pipeline from nothing: `python -m spaceship_utils.reproduce`.

Runs every step of `chain.RECIPE` in order under one folder (about 9 CPU hours on two
cores at full size), skipping the steps already done, so the same command resumes after
any stop; `--list` shows the steps and which are done. The last step checks the retrained
pipeline against the shipped one on the same validation images; the command exits with 0
when it is within two paired standard errors, 1 when it is not, and 3 when it stopped
before the end (budget or `--until`; 2 is a mistyped command)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spaceship_utils.chain import (
    BUDGETS,
    RECIPE,
    Collect,
    Factor,
    Fit,
    RecipeError,
    Train,
    check_summary,
    expected_hours,
    run_recipe,
    step_done,
)
from spaceship_utils.core.tables import format_table
from spaceship_utils.training.recipes import DEFAULT_RUNS


def recipe_table(root: Path, budget: str) -> str:
    """The recipe's steps: what each is for, what it starts from, its CPU hours at full
    size, and whether it is done under `root`."""
    rows = [
        (
            step.name,
            step.purpose,
            _starts_from(step),
            f"{step.hours:.2f}",
            "done" if step_done(step, root, BUDGETS[budget]) else "",
        )
        for step in RECIPE
    ]
    rows.append(("total", "", "", f"{expected_hours():.2f}", ""))
    return format_table(("step", "for", "starts from", "CPU hours", "status"), rows)


def _starts_from(step) -> str:
    if isinstance(step, Train):
        sources = [step.starts_from, step.own_answers and f"answers of {step.own_answers}"]
        return " + ".join(source for source in sources if source) or "random weights"
    if isinstance(step, Factor):
        return step.starts_from
    if isinstance(step, Collect | Fit) and step.verifier:
        return f"the pipeline, verifier {step.verifier}"
    return "the pipeline so far"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spaceship_utils.reproduce", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--root", type=Path, help=f"the chain's folder (default {DEFAULT_RUNS}/recipe[-BUDGET])"
    )
    parser.add_argument(
        "--budget",
        choices=BUDGETS,
        default="full",
        help="full: the shipped sizes; tiny: every step in a minute or two (a smoke test)",
    )
    parser.add_argument("--hours", type=float, help="wall-clock budget; stop cleanly after it")
    parser.add_argument(
        "--until",
        choices=[step.name for step in RECIPE],
        metavar="STEP",
        help="stop after this step (one of the steps --list shows)",
    )
    parser.add_argument("--list", action="store_true", help="list the steps and stop")
    args = parser.parse_args(argv)
    if args.hours is not None and not args.hours > 0:
        parser.error(f"--hours must be > 0, got {args.hours}")
    suffix = "" if args.budget == "full" else f"-{args.budget}"
    root = (args.root or DEFAULT_RUNS / f"recipe{suffix}").expanduser()
    print(recipe_table(root, args.budget), flush=True)
    if args.list:
        return 0
    try:
        result = run_recipe(
            root, args.budget, args.hours, args.until, log=lambda line: print(line, flush=True)
        )
    except RecipeError as error:
        parser.error(str(error))
    if result is None:
        return STOPPED
    print(check_summary(result))
    return 0 if result["passes"] else 1


STOPPED = 3
"""The exit status of a chain stopped before its end (argparse exits with 2 on bad usage)."""


if __name__ == "__main__":
    sys.exit(main())
