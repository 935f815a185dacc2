"""Collect the refined detector's own answers, to train its verifier on:

    python -m spaceship_utils.own_answers ~/spaceship-runs/own-answers --chunks 120

The collection is `training.hard_examples`; this is its command line. An interrupted
collection resumes at the next chunk when run again with the same verifier, restart
threshold and seed (the folder's `collection.json` records them)."""

from __future__ import annotations

import argparse
from pathlib import Path

from spaceship_utils.pretrained import load_pretrained
from spaceship_utils.training.hard_examples import (
    OWN_ANSWERS_SEED,
    OwnAnswersError,
    write_own_answers,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m spaceship_utils.own_answers", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("directory", type=Path, help="where the chunks go (resumes if present)")
    parser.add_argument("--chunks", type=int, default=120, help="chunks of 512 images (120)")
    parser.add_argument("--seed", type=int, default=OWN_ANSWERS_SEED)
    parser.add_argument(
        "--verifier-weights",
        type=Path,
        metavar="FILE",
        help="the verifier that asks (a verifier run's final.weights.h5); default: the shipped one",
    )
    parser.add_argument(
        "--restart-below", type=float, help="its restart threshold; default: the shipped one"
    )
    args = parser.parse_args(argv)
    model = load_pretrained("refined_detector")
    if args.verifier_weights is not None:
        if not args.verifier_weights.is_file():
            parser.error(f"--verifier-weights: no file {args.verifier_weights}")
        model.verifier.load_weights(args.verifier_weights)
    if args.restart_below is not None:
        model = model.with_settings(restart_below=args.restart_below)
    try:
        write_own_answers(model, args.directory, args.chunks, args.seed)
    except OwnAnswersError as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
