"""Train a network on fresh generated data, as a long CPU job that cannot lose work.

Library: `train_model(config, run_dir, hours=...)`. Command line:

    python -m spaceship_utils.train classifier            # seed's recipe, in ~/spaceship-runs
    python -m spaceship_utils.train regressor --hours 2   # stop cleanly after two hours
    python -m spaceship_utils.train regressor --hours 2   # ... the same command resumes

Every optimiser step trains on a new batch from `generate_batch`, seeded by the step's
number, so the network never sees an image twice and a resumed run draws exactly the data
an uninterrupted one would. The loop writes `checkpoint.npz` (weights, optimizer state,
position) at every epoch end and at least every `checkpoint_minutes` inside an epoch; it
stops cleanly, after a checkpoint, at the wall-clock budget or on SIGTERM / SIGINT (Ctrl-C,
or "interrupt kernel" in Jupyter). A progress line goes to the log every minute.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import math
import multiprocessing
import shutil
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .data import SHIP_PROBABILITY, generate_batch
from .detector import DESIGNS, decode_predictions, design_loss, encode_targets, split_design
from .metrics import IOU_THRESHOLD, ap_at_iou
from .models import TASKS, build_network
from .own_answers import (
    OWN_ANSWER_SHARE,
    describe_own_answers,
    own_answer_batch,
    read_own_answers,
)
from .pipelines import gate_boxes, network_outputs
from .preprocessing import denormalise_labels, normalise_labels, threshold_images
from .refiner import (
    CLEAN_WINDOWS,
    crop_windows,
    perturbed_proposals,
    refined_ious,
    refinement_targets,
    refiner_loss,
)
from .runs import (
    CHECKPOINT,
    HISTORY,
    INITIAL_WEIGHTS,
    RunDirectoryError,
    append_history_row,
    best_epoch,
    file_sha256,
    load_checkpoint,
    read_history,
    read_timing,
    save_checkpoint,
)
from .runtime import describe_machine, describe_runtime, import_keras
from .validation import check_count, has_box
from .verifier import (
    start_verifier_from,
    verification_targets,
    verifier_proposals,
    verifier_windows,
)

keras = import_keras()
ops = keras.ops

DEFAULT_RUNS = Path.home() / "spaceship-runs"
"""Where the command line keeps runs: outside the work tree, so a clean checkout keeps them."""

SEED_EPOCHS = {"classifier": 60, "regressor": 200}
"""Epochs of 1000 steps in the seed's train.py (batch 8): 480,000 and 1,600,000 images."""

RECIPES = {
    "classifier": {"epochs": SEED_EPOCHS["classifier"]},
    "regressor": {"epochs": SEED_EPOCHS["regressor"], "seed": 1},
    "detector": {
        "epochs": 60,
        "batch_size": 32,
        "schedule": "hold_cosine",
        "ema_momentum": 0.999,
        "detector_options": DESIGNS["fast"],
    },
    "refiner": {"epochs": 120, "batch_size": 32, "schedule": "hold_cosine", "ema_momentum": 0.999},
    "verifier": {
        "epochs": 60,
        "batch_size": 32,
        "schedule": "hold_cosine",
        "ema_momentum": 0.999,
        "seed": 2,
    },
}
"""What each task trains with unless told otherwise, on top of `TrainingConfig`'s defaults:
the seed's recipe for its two networks, chapter 7's shipped runs for the detector (1,920,000
images) and the refiner's first cycle (3,840,000 windows), both with a moving average of
their weights. The shipped refiner then trained a second cycle from those weights
(`initial_weights`, seed 1, 80 epochs, peak rate 3e-4: chapter 7). The verifier trains on
seed 2 from the shipped refiner's trunk (pass the refiner's file as `initial_weights`);
the shipped verifier then trained a second cycle from those weights, and a third from the
second's, with half of every batch the refined detector's own answers (`own_answers`,
chapter 7).
The regressor draws its images from seed 1, so the two networks of the seed never train on
the same images (chapters 4 and 5)."""

TRAIN_SHIP_SHARE = {
    "classifier": SHIP_PROBABILITY,
    "regressor": 1.0,
    "detector": SHIP_PROBABILITY,
    "refiner": 1.0,
    "verifier": SHIP_PROBABILITY,
}
"""Share of training images with a ship: the regressor and the refiner train on ships only."""

MONITOR = {
    "classifier": ("val_loss", min),
    "regressor": ("val_loss", min),
    "detector": ("val_ap07", max),
    "refiner": ("val_ap07", max),
    "verifier": ("val_loss", min),
}
"""The validation number that picks `best.weights.h5`, and whether lower or higher is better."""


def kept_epoch(history: dict[str, list[float]], task: str) -> int:
    """The epoch (from 1) whose weights a `task` run keeps: the best by `MONITOR[task]`."""
    if task not in MONITOR:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    metric, pick = MONITOR[task]
    return best_epoch(history, metric, higher_is_better=pick is max)


SCHEDULES = ("constant", "cosine", "hold_cosine")
"""Learning-rate schedules `TrainingConfig` knows (see its docstring)."""


def warmup_steps(total_steps: int) -> int:
    """Steps of the linear warm-up both decaying schedules start with: 2 % of the run."""
    return max(total_steps // 50, 1)


@keras.saving.register_keras_serializable(package="spaceship_utils")
class HoldThenCosine(keras.optimizers.schedules.LearningRateSchedule):
    """A 2 % linear warm-up from a tenth of `peak`, `peak` held until `hold` of the run,
    then a cosine down to 1 % of `peak` at `total_steps`.

    Chapter 7's ablation found the whole-run cosine too slow to let a short run learn; this
    keeps the rate up while the network still has most to learn and anneals only at the end.
    """

    def __init__(self, peak: float, total_steps: int, hold: float = 0.8):
        self.peak, self.total_steps, self.hold = float(peak), int(total_steps), float(hold)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = warmup_steps(self.total_steps)
        warming = self.peak * (0.1 + 0.9 * step / warmup)
        start = self.hold * self.total_steps
        progress = ops.clip((step - start) / max(self.total_steps - start, 1.0), 0.0, 1.0)
        decayed = self.peak * (0.01 + 0.99 * 0.5 * (1 + ops.cos(np.pi * progress)))
        return ops.where(step < warmup, warming, decayed)

    def get_config(self) -> dict:
        return {"peak": self.peak, "total_steps": self.total_steps, "hold": self.hold}


@dataclass
class TrainingConfig:
    """The seed's recipe by default: batch 8, 1000 steps per epoch, Adam at 1e-3.

    `epochs=None` takes the task's count from `RECIPES`; `TrainingConfig.recipe(task)` takes
    the whole recipe (the detector's differs in more than epochs). `schedule` is one of
    `SCHEDULES`: 'constant' (the seed), 'cosine' (decay to 1 % over the whole run, after a
    2 % warm-up) or 'hold_cosine' (`HoldThenCosine`: the peak rate until 80 % of the run).

    `ema_momentum` (e.g. 0.999) makes Adam keep an exponential moving average of the weights;
    validation, the best epoch's weights and so the shipped weights then use the average,
    and the history adds the raw weights' numbers as `raw_val_*`. None: no averaging.

    `initial_weights` (a `.weights.h5` file of the same network, e.g. a finished run's
    `final.weights.h5`; stored as an absolute path) starts the run from those weights
    instead of random ones: a second training cycle on fresh data (another `seed`), with a
    new optimizer and schedule; a verifier takes a refiner's file and copies its trunk
    (`verifier.copy_refiner_trunk`), or a verifier's file whole. Only a fresh start reads
    the file; a resume reads its checkpoint.

    `own_answers` (verifier only: a folder written by `own_answers.write_own_answers`, stored
    as an absolute path) makes `OWN_ANSWER_SHARE` of every batch the refined detector's own
    answers instead of made-up boxes, and the run validates on `validation_samples` own
    answers of the folder's first chunks, kept out of training (`own_answers.read_own_answers`).
    """

    task: str = "classifier"
    epochs: int | None = None
    steps_per_epoch: int = 1000
    batch_size: int = 8
    learning_rate: float = 1e-3
    schedule: str = "constant"
    validation_samples: int = 2048
    seed: int = 0
    workers: int = 1
    use_multiprocessing: bool = False
    detector_options: dict = field(default_factory=dict)
    ema_momentum: float | None = None
    initial_weights: str | Path | None = None
    own_answers: str | Path | None = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.epochs is None:
            self.epochs = RECIPES[self.task]["epochs"]
        for name in ("epochs", "steps_per_epoch", "batch_size", "validation_samples", "workers"):
            check_count(getattr(self, name), name, minimum=1)
        check_count(self.seed, "seed", minimum=0)
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.ema_momentum is not None and not 0 < self.ema_momentum < 1:
            raise ValueError(f"ema_momentum must be in (0, 1) or None, got {self.ema_momentum}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.detector_options and self.task != "detector":
            raise ValueError(f"detector_options apply to the detector only, not the {self.task}")
        split_design(self.detector_options)  # names an unknown option now, not hours later
        design_loss(self.detector_options)
        if self.initial_weights is not None:
            self.initial_weights = str(Path(self.initial_weights).expanduser().resolve())
        if self.own_answers is not None:
            if self.task != "verifier":
                raise ValueError(f"own_answers train the verifier only, not the {self.task}")
            self.own_answers = str(Path(self.own_answers).expanduser().resolve())

    @classmethod
    def recipe(cls, task: str, **changes) -> TrainingConfig:
        """The recipe of `task` (`RECIPES`) with `changes` on top (None values are ignored)."""
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        settings = RECIPES[task] | {
            key: value for key, value in changes.items() if value is not None
        }
        if "detector_options" in settings:
            settings["detector_options"] = dict(settings["detector_options"])
        return cls(task=task, **settings)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def training_images(self) -> int:
        return self.total_steps * self.batch_size


def task_inputs_and_targets(
    task: str,
    images: np.ndarray,
    labels: np.ndarray,
    design: dict | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """What the network of `task` reads and learns from raw images (N, 200, 200), labels (N, 5).

    classifier: thresholded images and presence (N, 1); regressor: thresholded images and
    boxes scaled to [0, 1] (N, 5); detector: raw images and (N, G, G, 9) targets shaped by
    its `design` (its stride and regression radius; None: the defaults); refiner: windows
    (N, 64, 64, 2) around proposals drawn with `rng` (`refiner.perturbed_proposals`) and
    their `refinement_targets` (N, 6); verifier: windows around boxes drawn with `rng`
    (`verifier.verifier_proposals`) and whether each box scores (N, 1).
    """
    if task == "classifier":
        return threshold_images(images), has_box(labels).astype(np.float32)[:, None]
    if task == "regressor":
        return threshold_images(images), normalise_labels(labels).astype(np.float32)
    if task == "detector":
        return images.astype(np.float32), encode_targets(labels, **split_design(design or {})[1])
    if task == "refiner":
        if rng is None:
            raise ValueError("the refiner's proposals are random: pass rng")
        proposals = perturbed_proposals(labels, rng)
        return crop_windows(images, proposals), refinement_targets(proposals, labels)
    if task == "verifier":
        if rng is None:
            raise ValueError("the verifier's boxes are random: pass rng")
        boxes = verifier_proposals(labels, rng)
        return verifier_windows(images, boxes), verification_targets(boxes, labels)
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


class GeneratedBatches(keras.utils.PyDataset):
    """Fresh training batches, each reproducible from (seed, epoch, index in epoch).

    `batch_at_step(step)` is what the training loop reads. `__getitem__` reads the batches
    of epoch `epoch`, which `on_epoch_begin` advances from the second epoch on, so
    `model.fit(batches, epochs=E)` trains on the images `train_model` trains on, in the
    same epochs, none twice. The refiner's first `clean_windows` windows come from images
    without noise or lines (its curriculum; 0 for a run that starts from trained weights);
    the other tasks have no curriculum and ignore it. Given `own_answers` (windows, targets
    from `own_answers.read_own_answers`), a verifier's batches take `OWN_ANSWER_SHARE` of
    their windows from them, drawn with the same step's generator.
    """

    def __init__(
        self,
        task: str,
        batch_size: int,
        steps_per_epoch: int,
        seed: int,
        design: dict | None = None,
        clean_windows: int = CLEAN_WINDOWS,
        own_answers: tuple[np.ndarray, np.ndarray] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        self.task = task
        self.batch_size = check_count(batch_size, "batch_size", minimum=1)
        self.steps_per_epoch = check_count(steps_per_epoch, "steps_per_epoch", minimum=1)
        self.seed = seed
        self.design = design
        check_count(clean_windows, "clean_windows", minimum=0)
        self.clean_windows = clean_windows if task == "refiner" else 0
        if own_answers is not None and task != "verifier":
            raise ValueError(f"own_answers train the verifier only, not the {task}")
        self.own_answers = own_answers
        self.own_count = 0 if own_answers is None else round(OWN_ANSWER_SHARE * batch_size)
        self.epoch = 0
        self._begun = False

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.batch_at_step(self.epoch * self.steps_per_epoch + index)

    def on_epoch_begin(self) -> None:
        """Keras calls this before each epoch of `fit`: every epoch after the first reads
        the next epoch's batches (before the first, Keras may read a batch to learn the
        shapes: that is epoch 0's)."""
        if self._begun:
            self.epoch += 1
        self._begun = True

    def batch_at_step(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """The batch of training step `step` (from 0): (inputs, targets) for the task."""
        epoch, index = divmod(step, self.steps_per_epoch)
        rng = np.random.default_rng([self.seed, epoch, index])
        clean = step * self.batch_size < self.clean_windows
        images, labels = generate_batch(
            self.batch_size - self.own_count,
            rng,
            ship_probability=TRAIN_SHIP_SHARE[self.task],
            **({"noise_level": 0.0, "no_lines": 0} if clean else {}),
        )
        inputs, targets = task_inputs_and_targets(self.task, images, labels, self.design, rng)
        if not self.own_count:
            return inputs, targets
        own_inputs, own_targets = own_answer_batch(*self.own_answers, self.own_count, rng)
        return np.concatenate([own_inputs, inputs]), np.concatenate([own_targets, targets])


def first_step_with_empty_images(
    batches: GeneratedBatches, count: int = 2, search: int = 10_000
) -> int:
    """The first step of a classifier run whose batch holds at least `count` images without
    a ship (to show both kinds); ValueError if none of the first `search` steps has one."""
    count = check_count(count, "count", minimum=0)
    if batches.task != "classifier" or count > batches.batch_size:
        raise ValueError(f"need a classifier's batches of at least {count} images")
    for step in range(search):
        _, targets = batches.batch_at_step(step)
        if np.sum(targets == 0) >= count:
            return step
    raise ValueError(f"none of the first {search} batches has {count} images without a ship")


def _ignore_interrupts() -> None:
    """Data worker processes leave Ctrl-C to the training process, which stops cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _batch_at_step(batches: GeneratedBatches, step: int) -> tuple[np.ndarray, np.ndarray]:
    return batches.batch_at_step(step)


def prefetched_batches(
    batches: GeneratedBatches, steps: range, workers: int, processes: bool, ahead: int = 8
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield `batches.batch_at_step(s)` for s in `steps`, in order, made ahead by workers.

    Worker processes are started with 'spawn': forking a process that already runs
    TensorFlow or JAX threads can deadlock.
    """
    if processes:
        context = multiprocessing.get_context("spawn")
        pool = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=context, initializer=_ignore_interrupts
        )
    else:
        pool = concurrent.futures.ThreadPoolExecutor(workers)
    pending: deque = deque()
    upcoming = iter(steps)
    try:
        for step in upcoming:
            pending.append(pool.submit(_batch_at_step, batches, step))
            if len(pending) >= ahead:
                break
        while pending:
            batch = pending.popleft().result()
            for step in upcoming:
                pending.append(pool.submit(_batch_at_step, batches, step))
                break
            yield batch
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def validation_data(
    task: str, samples: int, seed: int, design: dict | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fixed validation set, disjoint from training seeds: inputs, targets and raw labels."""
    rng = np.random.default_rng([seed, 2**31 - 1])
    images, labels = generate_batch(samples, rng, ship_probability=TRAIN_SHIP_SHARE[task])
    inputs, targets = task_inputs_and_targets(task, images, labels, design, rng)
    return inputs, targets, labels.astype(np.float64)


def boxes_from_outputs(outputs: np.ndarray, task: str) -> np.ndarray:
    """The (N, 5) boxes a regressor's or detector's raw outputs stand for (NaN = no ship)."""
    if task == "regressor":
        return denormalise_labels(np.asarray(outputs, dtype=np.float64))
    if task == "detector":
        boxes, presence = decode_predictions(outputs)
        return gate_boxes(boxes, presence)
    raise ValueError(f"a {task} does not output boxes")


def task_loss(task: str, design: dict | None = None) -> Callable | str:
    """The training loss: the seed's BCE and MSE, the detector's own (its `design`'s), the
    refiner's L1 plus 1 - IoU, the verifier's BCE."""
    if task == "detector":
        return design_loss(design)
    if task == "refiner":
        return refiner_loss
    probability = "binary_crossentropy"  # the classifier and the verifier answer one
    losses = {"classifier": probability, "regressor": "mse", "verifier": probability}
    if task not in losses:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return losses[task]


def validation_metrics(
    model: keras.Model,
    task: str,
    inputs: np.ndarray,
    targets: np.ndarray,
    labels: np.ndarray | None,
    design: dict | None = None,
) -> dict[str, float]:
    """val_loss (the training loss on the validation set), val_accuracy or val_ap07 (the
    classifier and the verifier need no raw `labels`)."""
    outputs = network_outputs(model, inputs, batch_size=128)
    loss_fn = keras.losses.get(task_loss(task, design))
    loss = float(keras.ops.convert_to_numpy(keras.ops.mean(loss_fn(targets, outputs))))
    metrics = {"val_loss": loss}
    if task in ("classifier", "verifier"):
        metrics["val_accuracy"] = float(np.mean((outputs >= 0.5) == (targets >= 0.5)))
    elif task == "refiner":  # every validation image holds a ship and a proposal
        metrics["val_ap07"] = float(np.mean(refined_ious(targets, outputs) > IOU_THRESHOLD))
    else:
        metrics["val_ap07"] = ap_at_iou(boxes_from_outputs(outputs, task), labels)
    return metrics


def build_and_compile(config: TrainingConfig) -> keras.Model:
    """A fresh network for the task, compiled with its loss and Adam (and the LR schedule)."""
    model = build_network(config.task, **config.detector_options)
    learning_rate = config.learning_rate
    if config.schedule == "cosine":
        warmup = warmup_steps(config.total_steps)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            config.learning_rate / 10,
            decay_steps=max(config.total_steps - warmup, 1),
            alpha=0.01,
            warmup_target=config.learning_rate,
            warmup_steps=warmup,
        )
    elif config.schedule == "hold_cosine":
        learning_rate = HoldThenCosine(config.learning_rate, config.total_steps)
    metrics = ["accuracy"] if config.task in ("classifier", "verifier") else None
    averaging = {"use_ema": True, "ema_momentum": config.ema_momentum}
    model.compile(
        keras.optimizers.Adam(learning_rate, **(averaging if config.ema_momentum else {})),
        loss=task_loss(config.task, config.detector_options),
        metrics=metrics,
    )
    return model


@contextlib.contextmanager
def kept_weights(model: keras.Model, config: TrainingConfig) -> Iterator[None]:
    """Inside, `model` holds the weights a run keeps: the optimizer's moving average when
    the config asks for one (`ema_momentum`), else its own. The raw weights come back after."""
    if config.ema_momentum is None:
        yield
        return
    raw = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    model.optimizer.finalize_variable_values(model.trainable_variables)  # the averages
    try:
        yield
    finally:
        for variable, value in zip(model.trainable_variables, raw, strict=True):
            variable.assign(value)


def save_weights_only(model: keras.Model, path: str | Path, config: TrainingConfig) -> None:
    """Save the network's weights without the optimizer state."""
    bare = build_network(config.task, **config.detector_options)
    bare.set_weights(model.get_weights())
    bare.save_weights(path)


def start_from_weights(model: keras.Model, path: str | Path) -> dict:
    """Load a `.weights.h5` file of the same network into `model` (weights only: the
    optimizer starts afresh), or raise RunDirectoryError naming the file; a verifier
    also starts from a refiner's file, its trunk only (`verifier.start_verifier_from`).
    Returns the record of what was loaded: {"file": name, "sha256": digest}."""
    path = Path(path)
    if not path.is_file():
        raise RunDirectoryError(f"initial weights: no file {path}")
    digest = file_sha256(path)  # before loading: the record names exactly these bytes
    try:
        if model.name == "verifier":
            start_verifier_from(model, path)
        else:
            model.load_weights(path)
    except Exception as error:  # h5py / Keras errors vary by version
        wanted = (
            "verifier or refiner run"
            if model.name == "verifier"
            else "run of the same task and design"
        )
        raise RunDirectoryError(
            f"initial weights {path} could not be loaded into the {model.name} network "
            f"({error}); pass the weights file of a finished {wanted}"
        ) from error
    return {"file": path.name, "sha256": digest}


@dataclass
class LoopState:
    """Where a run is: saved in every checkpoint, so a resume continues at the next step."""

    step: int = 0
    seconds: float = 0.0
    """Training wall time so far, over all sessions of the run (start-up excluded)."""
    epoch_sums: dict = field(default_factory=dict)
    """Sums of the per-step training metrics over the epoch in progress."""
    epoch_steps: int = 0
    epoch_started_at: float = 0.0
    """`seconds` when the epoch in progress began."""
    best: float | None = None
    last_validation: str = "none yet"


class StopRequest:
    """Turns SIGTERM / SIGINT into a flag the loop checks after every step."""

    def __init__(self):
        self.reason: str | None = None
        self._saved: dict = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._saved[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.reason = signal.Signals(signum).name
        # A second Ctrl-C or kill acts as usual, should the clean stop hang.
        signal.signal(signum, self._saved[signum])

    def __exit__(self, *exc) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)


@dataclass
class TrainingOutcome:
    """What `train_model` returns: the history so far and whether the run is complete."""

    history: dict[str, list[float]]
    finished: bool
    stopped_because: str | None = None


def train_model(
    config: TrainingConfig,
    run_dir: str | Path,
    hours: float | None = None,
    verbose: bool = True,
    checkpoint_minutes: float = 10.0,
    progress_seconds: float = 60.0,
    max_steps: int | None = None,
    log: Callable[[str], None] = print,
) -> TrainingOutcome:
    """Train (or resume) one network into `run_dir`.

    Stops after `hours` of wall time, on SIGTERM / SIGINT, or after `max_steps` steps in
    this call (how the tests interrupt a run), always after writing a checkpoint. Calling
    it again with the same config resumes exactly where it stopped.
    """
    run_dir = Path(run_dir).expanduser()  # "~/spaceship-runs/..." as the chapters write it
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    deadline = started + 3600 * hours if hours is not None else None
    say = log if verbose else (lambda message: None)

    config_path = run_dir / "config.json"
    keras.utils.set_random_seed(config.seed)
    model = build_and_compile(config)
    model.optimizer.build(model.trainable_variables)
    state = LoopState()
    checkpoint = run_dir / CHECKPOINT
    if checkpoint.is_file():
        _check_same_config(config_path, config)
        weights, optimizer_values, saved = load_checkpoint(checkpoint)
        model.set_weights(weights)
        for variable, value in zip(model.optimizer.variables, optimizer_values, strict=True):
            variable.assign(value)
        state = LoopState(**saved)
        say(
            f"resuming {run_dir} at image {state.step * config.batch_size:,} of "
            f"{config.training_images:,} ({state.step // config.steps_per_epoch} epochs done)"
        )
    else:  # a fresh start: old logs would mix two runs
        for stale in (
            HISTORY,
            "best.weights.h5",
            "final.weights.h5",
            "provenance.json",
            INITIAL_WEIGHTS,
        ):
            (run_dir / stale).unlink(missing_ok=True)
        if config.initial_weights is not None:
            record = start_from_weights(model, config.initial_weights)
            (run_dir / INITIAL_WEIGHTS).write_text(json.dumps(record, indent=1) + "\n")
            say(f"starting from the weights in {config.initial_weights}")
        config_path.write_text(json.dumps(asdict(config), indent=1) + "\n")

    design = config.detector_options
    own_training = own_validation = None
    if config.own_answers is not None:
        own_training, own_validation = read_own_answers(
            config.own_answers, config.validation_samples
        )
    batches = GeneratedBatches(
        config.task,
        config.batch_size,
        config.steps_per_epoch,
        config.seed,
        design,
        clean_windows=0 if config.initial_weights else CLEAN_WINDOWS,
        own_answers=own_training,
    )
    if own_validation is None:
        validation = validation_data(config.task, config.validation_samples, config.seed, design)
    else:  # the verifier's labels are its targets: no raw labels needed
        validation = (*own_validation, None)
    monitor, better = MONITOR[config.task]
    last_stop = (
        config.total_steps if max_steps is None else min(config.total_steps, state.step + max_steps)
    )

    def write_checkpoint() -> None:
        save_checkpoint(
            checkpoint,
            model.get_weights(),
            [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables],
            asdict(state),
        )

    stopped_because = None
    session_start_step, session_start_seconds = state.step, state.seconds
    tick = time.monotonic()
    last_checkpoint = last_progress = tick
    with (
        StopRequest() as stop,
        contextlib.closing(
            prefetched_batches(
                batches,
                range(state.step, last_stop),
                config.workers,
                config.use_multiprocessing,
            )
        ) as stream,
    ):
        for inputs, targets in stream:
            model.reset_metrics()  # this step's numbers, on every Keras 3 version
            logs = model.train_on_batch(inputs, targets, return_dict=True)
            for name, value in logs.items():
                state.epoch_sums[name] = state.epoch_sums.get(name, 0.0) + float(value)
            state.epoch_steps += 1
            state.step += 1
            now = time.monotonic()
            state.seconds += now - tick
            tick = now
            if state.step % config.steps_per_epoch == 0:
                row = _finish_epoch(model, config, state, validation)
                append_history_row(run_dir / HISTORY, row)
                state.epoch_started_at = state.seconds
                value = row[monitor]
                if math.isfinite(value) and (
                    state.best is None or better(value, state.best) != state.best
                ):
                    state.best = value
                    with kept_weights(model, config):
                        save_weights_only(model, run_dir / "best.weights.h5", config)
                state.last_validation = ", ".join(
                    f"{name} {value:.4f}" for name, value in row.items() if name.startswith("val_")
                )
                tick = time.monotonic()
                write_checkpoint()
                last_checkpoint = tick
            elif now - last_checkpoint >= 60 * checkpoint_minutes:
                write_checkpoint()
                last_checkpoint = now
            if now - last_progress >= progress_seconds:
                say(_progress_line(config, state, session_start_step, session_start_seconds))
                last_progress = now
            if stop.reason or (deadline is not None and now >= deadline):
                stopped_because = stop.reason or f"the {hours} h budget"
                break
    if state.step < config.total_steps:
        write_checkpoint()
        stopped_because = stopped_because or f"max_steps={max_steps}"
        say(
            f"stopped at image {state.step * config.batch_size:,} of {config.training_images:,} "
            f"({stopped_because}); checkpoint saved, run the same command to resume"
        )
        return TrainingOutcome(_history_so_far(run_dir), False, stopped_because)

    if state.best is None:
        raise RunDirectoryError(
            f"the run in {run_dir} finished without one epoch of finite {monitor}: it "
            "diverged; start a new run with a lower learning rate"
        )
    if not (run_dir / "provenance.json").is_file():  # a finished run keeps its record
        shutil.copyfile(run_dir / "best.weights.h5", run_dir / "final.weights.h5")
        (run_dir / "provenance.json").write_text(
            json.dumps(run_provenance(config, run_dir), indent=1) + "\n"
        )
    say(
        f"finished: {config.training_images:,} images; best {monitor} {state.best:.5f}; "
        f"weights in {run_dir / 'final.weights.h5'}"
    )
    return TrainingOutcome(read_history(run_dir / HISTORY), True)


def _check_same_config(path: Path, config: TrainingConfig) -> None:
    """Refuse to resume a run with other settings. A setting the saved config.json lacks
    (a run started before the setting existed) matches its default value."""
    if not path.is_file():
        raise RunDirectoryError(
            f"{path.parent} holds a checkpoint but no config.json: it is not a run this code "
            "started; choose another run directory"
        )
    saved = json.loads(path.read_text())
    current = json.loads(json.dumps(asdict(config)))
    defaults = json.loads(json.dumps(asdict(TrainingConfig(task=config.task))))
    for name, value in current.items():
        if name not in saved and value == defaults[name]:
            saved[name] = value
    if saved != current:
        differing = sorted(name for name in current if saved.get(name) != current[name])
        raise RunDirectoryError(
            f"the run in {path.parent} was started with a different configuration ({path}; "
            f"differs in {', '.join(differing)}); resume it with the same settings, or "
            "choose another run directory"
        )


def _finish_epoch(model, config: TrainingConfig, state: LoopState, validation) -> dict[str, float]:
    """One history row: training means over the epoch, validation, images, time and speed."""
    training_seconds = state.seconds - state.epoch_started_at
    row: dict[str, float] = {"epoch": state.step // config.steps_per_epoch - 1}
    row |= {name: total / state.epoch_steps for name, total in state.epoch_sums.items()}
    validation_started = time.monotonic()
    with kept_weights(model, config):
        row |= validation_metrics(model, config.task, *validation, config.detector_options)
    if config.ema_momentum is not None:  # the raw weights too, to see what averaging buys
        raw = validation_metrics(model, config.task, *validation, config.detector_options)
        row |= {f"raw_{name}": value for name, value in raw.items()}
    state.seconds += time.monotonic() - validation_started
    row["images"] = state.step * config.batch_size
    row["seconds"] = round(state.seconds, 1)
    images = config.steps_per_epoch * config.batch_size
    row["images_per_second"] = round(images / max(training_seconds, 1e-9), 1)
    state.epoch_sums, state.epoch_steps = {}, 0
    return row


def _progress_line(
    config: TrainingConfig, state: LoopState, start_step: int, start_seconds: float
) -> str:
    images = state.step * config.batch_size
    session_images = (state.step - start_step) * config.batch_size
    rate = session_images / max(state.seconds - start_seconds, 1e-9)
    remaining = (config.training_images - images) / max(rate, 1e-9)
    return (
        f"{config.task}: images {images:,}/{config.training_images:,} "
        f"({100 * images / config.training_images:.1f}%) | {rate:.1f} img/s | "
        f"elapsed {_clock(state.seconds)} | ETA {_clock(remaining)} | last {state.last_validation}"
    )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _history_so_far(run_dir: Path) -> dict[str, list[float]]:
    path = run_dir / HISTORY
    return read_history(path) if path.is_file() else {}


def run_provenance(config: TrainingConfig, run_dir: str | Path) -> dict:
    """What a shipped weights file records about the run that made it."""
    timing = read_timing(run_dir)
    return {
        "runtime": describe_runtime(),
        "machine": describe_machine(),
        "backend": keras.backend.backend(),
        "training_images": config.training_images,
        "epochs": config.epochs,
        "steps_per_epoch": config.steps_per_epoch,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "schedule": config.schedule,
        "detector_options": config.detector_options,
        "seed": config.seed,
        "validation_samples": config.validation_samples,
        "ema_momentum": config.ema_momentum,
        **_initial_weights_record(run_dir),
        **(
            {}
            if config.own_answers is None
            else {"own_answers": describe_own_answers(config.own_answers)}
        ),
        "training_seconds": round(timing["seconds"], 1),
        "wall_hours": round(timing["seconds"] / 3600, 2),
        "images_per_second": round(timing["images_per_second"], 1),
        "date": time.strftime("%Y-%m-%d"),
    }


def _initial_weights_record(run_dir: str | Path) -> dict:
    """The weights file a run started from, by name and SHA-256 as it was loaded (its
    folder is machine-specific); nothing for a run that started from random weights."""
    path = Path(run_dir) / INITIAL_WEIGHTS
    return {"initial_weights": json.loads(path.read_text())} if path.is_file() else {}


def main(argv: list[str] | None = None) -> None:
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
            f"--{name.replace('_', '-')}", type=int, help="default: the task's recipe (RECIPES)"
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
    args = parser.parse_args(argv)
    if args.hours is not None and not args.hours > 0:
        parser.error(f"--hours must be > 0, got {args.hours}")
    if (args.design or args.option) and args.task != "detector":
        parser.error("--design and --option apply to the detector only")
    design = dict(DESIGNS[args.design or "fast"]) if args.task == "detector" else None
    for option in args.option:
        key, equals, value = option.partition("=")
        if not equals:
            parser.error(f"--option {option!r}: write KEY=VALUE, e.g. regression_radius=0")
        try:
            design[key] = json.loads(value)
        except json.JSONDecodeError:
            parser.error(f"--option {option!r}: the value after '=' must be JSON, e.g. 0 or [1,2]")
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
