"""Speed of the generators and the scorer against the official code, on one CPU core.

    .venv/bin/python benchmarks/bench_data_and_scoring.py

Everything runs in one process pinned to one core, official and ours interleaved over
several rounds; the median per-item time of each is reported, and the ratios. The
official helpers are read from ../shared/reference/PROBLEM.md (not copied here).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from spaceship_utils.core.metrics import ap_at_iou, sample_ious  # noqa: E402
from spaceship_utils.data.generator import generate_batch, make_data  # noqa: E402
from tests.official_reference import load_official_helpers  # noqa: E402

ROUNDS = 5
SINGLE_CALLS = 1000
BATCH_SIZE = 256
BATCHES = 8
SCORED = 10_000


def seconds_per_item(draw, calls: int, items_per_call: int = 1) -> float:
    """Time `calls` calls of `draw` (results dropped at once, as a training loop would)."""
    started = time.perf_counter()
    for _ in range(calls):
        draw()
    return (time.perf_counter() - started) / (calls * items_per_call)


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    official = load_official_helpers()
    np.random.seed(0)
    official.make_data()  # the first call imports matplotlib inside skimage: not timed
    make_data()
    rng = np.random.default_rng(0)

    timings: dict[str, list[float]] = {"official": [], "faithful": [], "batched": []}
    for _ in range(ROUNDS):
        timings["official"].append(seconds_per_item(official.make_data, SINGLE_CALLS))
        timings["faithful"].append(seconds_per_item(make_data, SINGLE_CALLS))
        timings["batched"].append(
            seconds_per_item(lambda: generate_batch(BATCH_SIZE, rng), BATCHES, BATCH_SIZE)
        )
    median = {name: statistics.median(values) for name, values in timings.items()}

    labels = generate_batch(SCORED, np.random.default_rng(1))[1].astype(np.float64)
    noise = np.random.default_rng(2).normal(0, [3, 3, 0.2, 2, 3], size=labels.shape)
    predictions = labels + noise
    started = time.perf_counter()
    score = ap_at_iou(predictions, labels)
    ours_scoring = time.perf_counter() - started
    ious = sample_ious(predictions, labels)
    started = time.perf_counter()
    for p, t in zip(predictions, labels, strict=True):
        official.score_iou(p, t)
    official_scoring = time.perf_counter() - started
    assert np.isfinite(ious).sum() > 0

    print(
        f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python "
        f"{platform.python_version()}, NumPy {np.__version__}; one core; median of {ROUNDS} rounds"
    )
    print(f"official make_data      {median['official'] * 1e6:8.1f} us/image")
    print(
        f"faithful make_data      {median['faithful'] * 1e6:8.1f} us/image   "
        f"{median['official'] / median['faithful']:5.1f}x faster (target 4x)"
    )
    print(
        f"generate_batch({BATCH_SIZE})     {median['batched'] * 1e6:8.1f} us/image   "
        f"{median['official'] / median['batched']:5.1f}x faster (target 15x)"
    )
    print(
        f"legacy noise draw alone {_legacy_noise_floor() * 1e6:8.1f} us/image   "
        "(the part of make_data that bit-identity forbids changing)"
    )
    print(
        f"scoring {SCORED} predictions: {ours_scoring:.2f} s (target < 2 s); official loop "
        f"{official_scoring:.2f} s ({official_scoring / ours_scoring:.1f}x ours); score {score:.3f}"
    )


def _legacy_noise_floor() -> float:
    return min(
        seconds_per_item(lambda: np.random.random_sample((200, 200)), 500) for _ in range(ROUNDS)
    )


if __name__ == "__main__":
    main()
