"""Training images per second of the seed's networks: backend x batch size x data feeding.

Run on an idle machine (a training run in the background falsifies every number):

    python benchmarks/bench_training_throughput.py > benchmarks/training-throughput-DATE.txt

For each Keras backend that is installed (TensorFlow, JAX, PyTorch) a child process
trains each network for a fixed number of steps on batches generated beforehand (pure
compute: `compute images/s`), then measures what one batch costs to generate and
preprocess on one core (`data ms/batch`) and the share of a training step that this is.
Last, the default setting is timed end to end with data made in worker threads and in
worker processes, since that is what a real run pays.

    python benchmarks/bench_training_throughput.py --parallel torch 8

compares training the classifier and the regressor one after the other (each on both
cores) with training both at once (each pinned to one core, one thread).
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys
import time

BACKENDS = ("tensorflow", "jax", "torch")
TASKS = ("classifier", "regressor")
BATCH_SIZES = (8, 32, 64)
MEASURE_IMAGES = 1536
"""Images timed per setting (after warm-up): about 10-20 s each on a 2-core machine."""


def measure_one_backend(feeding: bool) -> list[dict]:
    """Runs inside a child process whose KERAS_BACKEND is already set."""
    import numpy as np

    from spaceship_utils.data.generator import generate_batch
    from spaceship_utils.training.batches import GeneratedBatches
    from spaceship_utils.training.loop import build_and_compile
    from spaceship_utils.training.recipes import TrainingConfig
    from spaceship_utils.training.tasks import task_inputs_and_targets

    rows = []
    for task in TASKS:
        for batch_size in BATCH_SIZES:
            model = build_and_compile(TrainingConfig(task=task, batch_size=batch_size))
            rng = np.random.default_rng(0)
            images, labels = generate_batch(batch_size, rng, ship_probability=1.0)
            x, y = task_inputs_and_targets(task, images, labels)
            for _ in range(5):  # warm-up: tracing / compiling
                model.train_on_batch(x, y)
            steps = max(MEASURE_IMAGES // batch_size, 10)
            start = time.perf_counter()
            for _ in range(steps):
                model.train_on_batch(x, y)
            compute = steps * batch_size / (time.perf_counter() - start)
            batches = GeneratedBatches(task, batch_size, steps_per_epoch=50, seed=0)
            start = time.perf_counter()
            for index in range(20):
                batches[index]
            data_seconds = (time.perf_counter() - start) / 20
            step_seconds = batch_size / compute
            rows.append(
                {
                    "task": task,
                    "batch": batch_size,
                    "compute_images_per_second": round(compute, 1),
                    "data_ms_per_batch": round(1000 * data_seconds, 2),
                    "data_share_of_step": round(data_seconds / (data_seconds + step_seconds), 3),
                }
            )
    if feeding:
        rows += measure_feeding()
    return rows


def measure_feeding() -> list[dict]:
    """End-to-end images/s of `train_model` for the classifier at batch 8: threads vs processes."""
    import tempfile

    from spaceship_utils.training.loop import train_model
    from spaceship_utils.training.recipes import TrainingConfig

    rows = []
    for processes in (False, True):
        config = TrainingConfig(
            task="classifier",
            epochs=1,
            steps_per_epoch=200,
            batch_size=8,
            validation_samples=8,
            workers=1,
            use_multiprocessing=processes,
        )
        with tempfile.TemporaryDirectory() as run_dir:
            start = time.perf_counter()
            train_model(config, run_dir, verbose=False)
            seconds = time.perf_counter() - start
        rows.append(
            {
                "task": "classifier",
                "batch": 8,
                "feeding": "processes" if processes else "threads",
                "end_to_end_images_per_second": round(200 * 8 / seconds, 1),
            }
        )
    return rows


ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}


def measure_setting(task: str, batch_size: int) -> float:
    """Compute images/s of one network at one batch size (in a child process)."""
    import numpy as np

    from spaceship_utils.data.generator import generate_batch
    from spaceship_utils.training.loop import build_and_compile
    from spaceship_utils.training.recipes import TrainingConfig
    from spaceship_utils.training.tasks import task_inputs_and_targets

    if os.environ.get("OMP_NUM_THREADS") == "1" and os.environ["KERAS_BACKEND"] == "torch":
        import torch

        torch.set_num_threads(1)
    model = build_and_compile(TrainingConfig(task=task, batch_size=batch_size))
    images, labels = generate_batch(batch_size, np.random.default_rng(0), ship_probability=1.0)
    x, y = task_inputs_and_targets(task, images, labels)
    for _ in range(5):
        model.train_on_batch(x, y)
    steps = max(MEASURE_IMAGES // batch_size, 10)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * batch_size / (time.perf_counter() - start)


def compare_one_and_two_processes(backend: str, batch_size: int) -> None:
    """Classifier and regressor one after the other (all cores) vs at once (a core each)."""
    env = {**os.environ, "KERAS_BACKEND": backend}
    command = [sys.executable, __file__, "--setting"]
    alone = {}
    for task in TASKS:
        result = subprocess.run(
            [*command, task, str(batch_size)], env=env, capture_output=True, text=True, check=True
        )
        alone[task] = float(result.stdout.split()[-1])
    children = [
        subprocess.Popen(
            ["taskset", "-c", str(core), *command, task, str(batch_size)],
            env=env | ONE_THREAD,
            stdout=subprocess.PIPE,
            text=True,
        )
        for core, task in enumerate(TASKS)
    ]
    together = {
        task: float(child.communicate()[0].split()[-1])
        for task, child in zip(TASKS, children, strict=True)
    }
    print(f"\n{backend}, batch {batch_size}: one network at a time on both cores vs both at once")
    for task in TASKS:
        print(f"  {task:<11} alone {alone[task]:6.1f} img/s   together {together[task]:6.1f} img/s")
    print(f"  sum of both  together {sum(together.values()):6.1f} img/s")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(measure_one_backend(feeding=sys.argv[2] == "feeding")))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--setting":
        print(measure_setting(sys.argv[2], int(sys.argv[3])))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--parallel":
        compare_one_and_two_processes(sys.argv[2], int(sys.argv[3]))
        return
    from spaceship_utils.core.runtime import describe_machine

    print(
        f"# {time.strftime('%Y-%m-%d')}, {describe_machine()}, Python {platform.python_version()}"
    )
    print("backend     task        batch  compute img/s  data ms/batch  data share")
    feeding_rows = {}
    for backend in BACKENDS:
        module = "tensorflow" if backend == "tensorflow" else backend
        if importlib.util.find_spec(module) is None:
            print(f"{backend:<11} not installed")
            continue
        env = {**os.environ, "KERAS_BACKEND": backend}
        result = subprocess.run(
            [sys.executable, __file__, "--child", "feeding"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        rows = json.loads(result.stdout.strip().splitlines()[-1])
        for row in rows:
            if "feeding" in row:
                feeding_rows.setdefault(backend, []).append(row)
                continue
            print(
                f"{backend:<11} {row['task']:<11} {row['batch']:>5}  "
                f"{row['compute_images_per_second']:>13}  {row['data_ms_per_batch']:>13}  "
                f"{row['data_share_of_step']:>10}"
            )
    print("\nend to end (train_model, classifier, batch 8, one data worker, 200 steps)")
    for backend, rows in feeding_rows.items():
        for row in rows:
            print(f"{backend:<11} {row['feeding']:<10} {row['end_to_end_images_per_second']} img/s")


if __name__ == "__main__":
    main()
