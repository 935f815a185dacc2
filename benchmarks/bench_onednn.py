"""What TensorFlow's oneDNN kernels are worth on this CPU: training and inference, off and on.

On Linux, TensorFlow turns its oneDNN kernels on by default only on CPUs with the
instructions it looks for (AVX-512 VNNI or BF16, AVX-VNNI, AMX, as on recent Intel Xeons);
on others, such as an AMD EPYC with AVX2 only, it falls back to its generic kernels.
`core.runtime.import_keras` asks for oneDNN unless `TF_ENABLE_ONEDNN_OPTS` is already set.
Run on an idle machine:

    python benchmarks/bench_onednn.py > benchmarks/onednn-DATE.txt

For each setting (TF_ENABLE_ONEDNN_OPTS=0, =1, and PyTorch for comparison when it is
installed) a child process measures the training images/s of the recipe's networks at their
recipe batch sizes (batches generated beforehand: pure compute), then the baseline's and
the shipped pipeline's milliseconds per image (median of 3 calls on 128 images, as chapter
12's cost table). Compare rows of one run: the numbers move between runs and machines.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys
import time

TASKS = ("classifier", "detector", "refiner", "verifier")
TRAIN_IMAGES = 256
"""Training images timed per network, after five warm-up steps."""

LATENCY_IMAGES = 128
LATENCY_REPEATS = 3

SETTINGS = {
    "tensorflow, oneDNN off": {"KERAS_BACKEND": "tensorflow", "TF_ENABLE_ONEDNN_OPTS": "0"},
    "tensorflow, oneDNN on": {"KERAS_BACKEND": "tensorflow", "TF_ENABLE_ONEDNN_OPTS": "1"},
    "torch": {"KERAS_BACKEND": "torch"},
}


def measure() -> dict:
    """Runs inside a child process whose environment holds one of `SETTINGS`."""
    import numpy as np

    from spaceship_utils.data.generator import generate_batch
    from spaceship_utils.evaluation.cost import latency_ms_per_image
    from spaceship_utils.pretrained import load_pretrained
    from spaceship_utils.training.batches import GeneratedBatches
    from spaceship_utils.training.loop import build_and_compile
    from spaceship_utils.training.recipes import TrainingConfig

    result = {}
    for task in TASKS:
        config = TrainingConfig.recipe(task)
        model = build_and_compile(config)
        x, y = GeneratedBatches(task, config.batch_size, steps_per_epoch=1, seed=0)[0]
        for _ in range(5):  # warm-up: tracing / compiling
            model.train_on_batch(x, y)
        steps = max(TRAIN_IMAGES // config.batch_size, 5)
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        seconds = time.perf_counter() - start
        result[f"train {task} (batch {config.batch_size})"] = steps * config.batch_size / seconds
    images = generate_batch(LATENCY_IMAGES, np.random.default_rng(1))[0]
    for name in ("baseline", "refined_detector"):
        pipeline = load_pretrained(name)
        result[f"{name} ms/image"] = latency_ms_per_image(pipeline.predict, images, LATENCY_REPEATS)
    return result


def main() -> None:
    if sys.argv[1:] == ["--child"]:
        print(json.dumps(measure()))
        return
    from spaceship_utils.core.runtime import describe_machine

    print(
        f"# {time.strftime('%Y-%m-%d')}, {describe_machine()}, Python {platform.python_version()}"
    )
    print(f"# training: images/s over {TRAIN_IMAGES} images after warm-up, recipe batch sizes")
    print(
        f"# inference: ms per image, median of {LATENCY_REPEATS} calls on {LATENCY_IMAGES} images"
    )
    columns = {}
    for name, env in SETTINGS.items():
        if importlib.util.find_spec(env["KERAS_BACKEND"]) is None:
            print(f"# {name}: not installed")
            continue
        child = subprocess.run(
            [sys.executable, __file__, "--child"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        columns[name] = json.loads(child.stdout.strip().splitlines()[-1])
    rows = next(iter(columns.values())).keys()
    width = max(len(row) for row in rows)
    print(f"{'':<{width}}  " + "  ".join(f"{name:>22}" for name in columns))
    for row in rows:
        print(f"{row:<{width}}  " + "  ".join(f"{col[row]:>22.1f}" for col in columns.values()))


if __name__ == "__main__":
    main()
