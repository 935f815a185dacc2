"""Score a model on official samples: `python -m spaceship_utils.evaluate --model NAME`.

The scoring is `evaluation.harness`; this is its command line."""

from __future__ import annotations

import argparse

from spaceship_utils.evaluation.harness import evaluate_model
from spaceship_utils.pretrained import PRETRAINED_MODELS, WeightsError, load_pretrained


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="spaceship-evaluate", description="Score a pretrained model like the challenge."
    )
    parser.add_argument("--model", choices=PRETRAINED_MODELS, default="baseline")
    parser.add_argument("--samples", type=int, default=10_000, help="official samples to score")
    parser.add_argument("--seed", type=int, default=0, help="np.random.seed before generating")
    args = parser.parse_args(argv)
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
