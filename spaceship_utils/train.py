"""Train the seed's classifier or regressor on fresh generated data.

Library: `train_model(config, run_dir)`. Command line (the seed's train.py):

    python -m spaceship_utils.train classifier --run-dir runs/classifier
    python -m spaceship_utils.train regressor --run-dir runs/regressor --epochs 16

Data come from `generate_batch`, a new batch for every step, so the model never sees
an image twice. A run directory holds `best.weights.h5` (best validation loss so far,
weights only), `history.csv` (one row per epoch) and `backup/` (model and optimizer
state at the last finished epoch). Running the same command again after an
interruption resumes from `backup/` without losing finished epochs.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .data import generate_batch
from .metrics import ap_at_iou
from .models import build_classifier, build_regressor
from .preprocessing import denormalise_labels, normalise_labels, threshold_images
from .runtime import import_keras
from .validation import check_count, has_box

keras = import_keras()

TASKS = ("classifier", "regressor", "detector")


@dataclass
class TrainingConfig:
    """The seed's recipe by default: Adam at 1e-3, BCE or MSE, about a million images."""

    task: str = "classifier"
    epochs: int = 16
    steps_per_epoch: int = 1000
    batch_size: int = 64
    learning_rate: float = 1e-3
    validation_samples: int = 2000
    seed: int = 0
    workers: int = 1
    use_multiprocessing: bool = False
    mixed_precision: bool = False

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        for name in ("epochs", "steps_per_epoch", "batch_size", "validation_samples", "workers"):
            check_count(getattr(self, name), name, minimum=1)
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")

    @property
    def training_images(self) -> int:
        return self.epochs * self.steps_per_epoch * self.batch_size


def classifier_targets(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thresholded images (N, 200, 200) and presence targets (N, 1) in {0, 1}."""
    present = has_box(labels)
    return threshold_images(images), present.astype(np.float32)[:, None]


def regressor_targets(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thresholded images (N, 200, 200) and scaled boxes (N, 5); every image must hold a ship."""
    return threshold_images(images), normalise_labels(labels).astype(np.float32)


def detector_targets(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw images (N, 200, 200) (the detector thresholds inside) and (N, 50, 50, 9) targets."""
    from .detector import encode_targets

    return images, encode_targets(labels)


TARGETS = {
    "classifier": classifier_targets,
    "regressor": regressor_targets,
    "detector": detector_targets,
}
SHIP_PROBABILITY = {"classifier": 0.8, "regressor": 1.0, "detector": 0.8}
"""Share of training images with a ship: the regressor trains on ships only."""


class GeneratedBatches(keras.utils.PyDataset):
    """Fresh batches for training, reproducible per (seed, epoch, batch index).

    Every batch gets its own `numpy.random.Generator` seeded from (seed, epoch, index),
    so worker threads or processes never repeat each other, and a resumed run draws
    the same data as an uninterrupted one. `EpochCounter` keeps `epoch` current.
    """

    def __init__(
        self,
        task: str,
        batch_size: int,
        steps_per_epoch: int,
        seed: int,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 16,
    ):
        super().__init__(
            workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size
        )
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        self.task = task
        self.batch_size = check_count(batch_size, "batch_size", minimum=1)
        self.steps_per_epoch = check_count(steps_per_epoch, "steps_per_epoch", minimum=1)
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.steps_per_epoch

    def batch_rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        images, labels = generate_batch(
            self.batch_size, self.batch_rng(index), ship_probability=SHIP_PROBABILITY[self.task]
        )
        return TARGETS[self.task](images, labels)


class EpochCounter(keras.callbacks.Callback):
    """Tell the data which epoch is starting (also after a resume)."""

    def __init__(self, batches: GeneratedBatches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.epoch = epoch


class ValidationScore(keras.callbacks.Callback):
    """Log the challenge score of the network's boxes on the validation set (`val_ap07`)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, task: str):
        super().__init__()
        self.images, self.labels, self.task = images, labels, task

    def on_epoch_end(self, epoch, logs=None):
        outputs = np.asarray(self.model.predict(self.images, batch_size=256, verbose=0))
        if logs is not None:
            logs["val_ap07"] = ap_at_iou(boxes_from_outputs(outputs, self.task), self.labels)


def boxes_from_outputs(outputs: np.ndarray, task: str) -> np.ndarray:
    """The (N, 5) boxes a regressor's or detector's raw outputs stand for (NaN = no ship)."""
    if task == "regressor":
        return denormalise_labels(outputs.astype(np.float64))
    from .detector import decode_predictions
    from .pretrained import PRESENCE_THRESHOLD

    boxes, presence = decode_predictions(outputs)
    return np.where((presence >= PRESENCE_THRESHOLD)[:, None], boxes, np.nan)


def validation_data(
    task: str, samples: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fixed validation set, disjoint from training seeds: inputs, targets and raw labels."""
    rng = np.random.default_rng([seed, 2**31 - 1])
    images, labels = generate_batch(samples, rng, ship_probability=SHIP_PROBABILITY[task])
    inputs, targets = TARGETS[task](images, labels)
    return inputs, targets, labels.astype(np.float64)


def build_network(task: str) -> keras.Model:
    """A fresh, uncompiled network for `task` ('classifier' or 'regressor')."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if task == "detector":
        from .detector import build_detector

        return build_detector()
    return build_classifier() if task == "classifier" else build_regressor()


def save_weights_only(model: keras.Model, path: str | Path) -> None:
    """Save the network's weights without the optimizer state (a third of the size for Adam)."""
    bare = build_network(model.name)
    bare.set_weights(model.get_weights())
    bare.save_weights(path)


def build_and_compile(config: TrainingConfig) -> keras.Model:
    """A fresh network for the task, compiled with the seed's loss and Adam."""
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = build_network(config.task)
    optimizer = keras.optimizers.Adam(config.learning_rate)
    if config.task == "classifier":
        model.compile(optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    elif config.task == "regressor":
        model.compile(optimizer, loss="mse")
    else:
        from .detector import detector_loss

        model.compile(optimizer, loss=detector_loss)
    return model


def train_model(
    config: TrainingConfig,
    run_dir: str | Path,
    verbose: int | str = "auto",
    extra_callbacks: list[keras.callbacks.Callback] | None = None,
) -> dict[str, list[float]]:
    """Train (or resume) one network into `run_dir`; return the full history by epoch.

    With `config.use_multiprocessing`, workers are started with the 'spawn' method:
    forking a process that already runs JAX or TensorFlow threads can deadlock.
    """
    run_dir = Path(run_dir)
    if config.use_multiprocessing:
        multiprocessing.set_start_method("spawn", force=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    best_so_far = None
    if (run_dir / "backup").exists():
        done = read_history(run_dir / "history.csv") if (run_dir / "history.csv").exists() else {}
        if done.get("val_loss"):
            best_so_far = min(done["val_loss"])
        if verbose != 0:
            print(
                f"resuming the run in {run_dir}: {len(done.get('loss', []))} of "
                f"{config.epochs} epochs already done"
            )
    else:  # a fresh start, not a resume: drop old logs
        for stale in ("history.csv", "timing.csv"):
            (run_dir / stale).unlink(missing_ok=True)
    (run_dir / "config.json").write_text(json.dumps(asdict(config), indent=1) + "\n")
    keras.utils.set_random_seed(config.seed)
    model = build_and_compile(config)
    batches = GeneratedBatches(
        config.task,
        config.batch_size,
        config.steps_per_epoch,
        config.seed,
        config.workers,
        config.use_multiprocessing,
    )
    val_inputs, val_targets, val_labels = validation_data(
        config.task, config.validation_samples, config.seed
    )
    callbacks = [EpochCounter(batches)]
    if config.task != "classifier":
        callbacks.append(ValidationScore(val_inputs, val_labels, config.task))
    callbacks += [
        keras.callbacks.ModelCheckpoint(
            run_dir / "best.weights.h5",
            monitor="val_loss",
            save_best_only=True,
            save_weights_only=True,
            # After a resume, only an epoch better than every earlier one may overwrite.
            initial_value_threshold=best_so_far,
        ),
        keras.callbacks.CSVLogger(run_dir / "history.csv", append=True),
        keras.callbacks.BackupAndRestore(run_dir / "backup"),
        EpochTimer(run_dir / "timing.csv", config.steps_per_epoch * config.batch_size),
        *(extra_callbacks or []),
    ]
    model.fit(
        batches,
        epochs=config.epochs,
        validation_data=(val_inputs, val_targets),
        callbacks=callbacks,
        verbose=verbose,
    )
    model.load_weights(run_dir / "best.weights.h5")
    save_weights_only(model, run_dir / "final.weights.h5")
    provenance = run_provenance(config, run_dir)
    (run_dir / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n")
    return read_history(run_dir / "history.csv")


class EpochTimer(keras.callbacks.Callback):
    """Append each epoch's wall time and images per second to a CSV file."""

    def __init__(self, path: Path, images_per_epoch: int):
        super().__init__()
        self.path, self.images_per_epoch = Path(path), images_per_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.started
        new = not self.path.exists()
        with open(self.path, "a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(["epoch", "seconds", "images_per_second"])
            writer.writerow([epoch, f"{seconds:.2f}", f"{self.images_per_epoch / seconds:.1f}"])


def read_history(path: str | Path) -> dict[str, list[float]]:
    """A Keras CSVLogger file as {column: values by epoch}; an epoch logged twice is kept once."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_epoch = {int(row["epoch"]): row for row in rows}
    ordered = [by_epoch[epoch] for epoch in sorted(by_epoch)]
    columns = [name for name in (rows[0] if rows else {}) if name != "epoch"]
    return {name: [float(row[name]) for row in ordered] for name in columns}


def read_timing(run_dir: str | Path) -> dict[str, float]:
    """Total seconds and median images per second of a run, from its timing.csv.

    The first epoch includes compiling the model (XLA on JAX), so the median is the
    steady-state throughput.
    """
    path = Path(run_dir) / "timing.csv"
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{path} has no finished epoch")
    speeds = sorted(float(row["images_per_second"]) for row in rows)
    return {
        "seconds": sum(float(row["seconds"]) for row in rows),
        "images_per_second": speeds[len(speeds) // 2],
        "epochs": len(rows),
    }


def run_provenance(config: TrainingConfig, run_dir: str | Path) -> dict:
    """What a shipped weights file records about the run that made it."""
    from .runtime import describe_runtime

    timing = read_timing(run_dir)
    return {
        "runtime": describe_runtime(),
        "training_images": config.training_images,
        "epochs": config.epochs,
        "steps_per_epoch": config.steps_per_epoch,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "seed": config.seed,
        "training_seconds": round(timing["seconds"], 1),
        "images_per_second": round(timing["images_per_second"], 1),
        "date": time.strftime("%Y-%m-%d"),
    }


def describe_training_speed(run_dir: str | Path, name: str, role: str) -> str:
    """One line on the speed of the run in `run_dir`, or of the shipped weights' run if none."""
    if (Path(run_dir) / "timing.csv").is_file():
        timing = read_timing(run_dir)
        return (
            f"this run: {timing['epochs']} epochs in {timing['seconds'] / 60:.1f} min, "
            f"median {timing['images_per_second']:.0f} images per second"
        )
    from .pretrained import read_manifest

    record = read_manifest()[name]["files"][role]["provenance"]
    return (
        f"shipped weights: {record['training_images']:,} images in "
        f"{record['training_seconds'] / 60:.1f} min at {record['images_per_second']:.0f} "
        f"images per second on {record['runtime']}"
    )


def train_or_load(
    config: TrainingConfig,
    run_dir: str | Path,
    train_from_scratch: bool | None,
    verbose: int | str = 2,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Train the network (True), or load the shipped weights and their history (False).

    None decides by hardware: train where a GPU is present, load otherwise.
    """
    from .pretrained import shipped_history, verified_weights_path

    if train_from_scratch is None:
        from .runtime import has_accelerator

        train_from_scratch = has_accelerator()
    model = build_network(config.task)
    if train_from_scratch:
        history = train_model(config, run_dir, verbose=verbose)
        model.load_weights(Path(run_dir) / "final.weights.h5")
        return model, history
    model.load_weights(verified_weights_path("baseline", config.task))
    return model, shipped_history("baseline", config.task)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=TASKS)
    parser.add_argument("--run-dir", type=Path, required=True)
    defaults = TrainingConfig()
    for name in (
        "epochs",
        "steps_per_epoch",
        "batch_size",
        "validation_samples",
        "seed",
        "workers",
    ):
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name)
        )
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument(
        "--processes",
        action="store_true",
        help="feed data from worker processes instead of threads",
    )
    parser.add_argument("--mixed-precision", action="store_true", help="bfloat16 compute")
    args = parser.parse_args(argv)
    config = TrainingConfig(
        task=args.task,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        validation_samples=args.validation_samples,
        seed=args.seed,
        workers=args.workers,
        use_multiprocessing=args.processes,
        mixed_precision=args.mixed_precision,
    )
    history = train_model(config, args.run_dir)
    best = min(history["val_loss"])
    print(f"{args.task}: best val_loss {best:.5f}; weights in {args.run_dir / 'final.weights.h5'}")


if __name__ == "__main__":
    main()
