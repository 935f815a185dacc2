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

import contextlib
import json
import math
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from spaceship_utils.core.runtime import describe_machine, describe_runtime, import_keras
from spaceship_utils.networks.windows import (
    CLEAN_WINDOWS,
)
from spaceship_utils.training.batches import GeneratedBatches, prefetched_batches, validation_data
from spaceship_utils.training.hard_examples import (
    describe_own_answers,
    read_own_answers,
)
from spaceship_utils.training.recipes import HoldThenCosine, TrainingConfig, warmup_steps
from spaceship_utils.training.runs import (
    CHECKPOINT,
    HISTORY,
    INITIAL_WEIGHTS,
    RunDirectoryError,
    append_history_row,
    file_sha256,
    load_checkpoint,
    read_history,
    read_timing,
    save_checkpoint,
)
from spaceship_utils.training.tasks import (
    build_network,
    task_loss,
    task_named,
    validation_metrics,
)

keras = import_keras()


ops = keras.ops


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
    metrics = ["accuracy"] if task_named(config.task).answers == "probability" else None
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
    task = task_named(model.name)
    try:
        task.start_from(model, path)
    except Exception as error:  # h5py / Keras errors vary by version
        raise RunDirectoryError(
            f"initial weights {path} could not be loaded into the {model.name} network "
            f"({error}); pass the weights file of a finished {task.starts_from}"
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
    deadline = time.monotonic() + 3600 * hours if hours is not None else None
    say = log if verbose else (lambda message: None)
    model, state = open_run(config, run_dir, say)
    last_stop = (
        config.total_steps if max_steps is None else min(config.total_steps, state.step + max_steps)
    )
    stopped_because = train_steps(
        model,
        config,
        state,
        run_dir,
        range(state.step, last_stop),
        deadline,
        checkpoint_minutes,
        progress_seconds,
        say,
    )
    if state.step < config.total_steps:
        if stopped_because == "deadline":
            stopped_because = f"the {hours:.2f} h budget"
        stopped_because = stopped_because or f"max_steps={max_steps}"
        _write_checkpoint(model, state, run_dir)
        say(
            f"stopped at image {state.step * config.batch_size:,} of {config.training_images:,} "
            f"({stopped_because}); checkpoint saved, run the same command to resume"
        )
        return TrainingOutcome(_history_so_far(run_dir), False, stopped_because)
    return finish_run(config, run_dir, state, say)


def open_run(
    config: TrainingConfig, run_dir: Path, say: Callable[[str], None]
) -> tuple[keras.Model, LoopState]:
    """The compiled network of a run and where the run is: from its checkpoint in `run_dir`
    (the same config only), or a fresh start that clears an old run's logs and records the
    config (and the initial weights it starts from, if any)."""
    config_path = run_dir / "config.json"
    keras.utils.set_random_seed(config.seed)
    model = build_and_compile(config)
    model.optimizer.build(model.trainable_variables)
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
        return model, state
    # A fresh start: old logs would mix two runs.
    for stale in (HISTORY, "best.weights.h5", "final.weights.h5", "provenance.json"):
        (run_dir / stale).unlink(missing_ok=True)
    (run_dir / INITIAL_WEIGHTS).unlink(missing_ok=True)
    if config.initial_weights is not None:
        record = start_from_weights(model, config.initial_weights)
        (run_dir / INITIAL_WEIGHTS).write_text(json.dumps(record, indent=1) + "\n")
        say(f"starting from the weights in {config.initial_weights}")
    config_path.write_text(json.dumps(asdict(config), indent=1) + "\n")
    return model, LoopState()


def run_data(config: TrainingConfig) -> tuple[GeneratedBatches, tuple]:
    """A run's training batches and its validation data: (inputs, targets, labels), the
    labels None where the verifier validates on held-out own answers."""
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
    return batches, validation


def train_steps(
    model: keras.Model,
    config: TrainingConfig,
    state: LoopState,
    run_dir: Path,
    steps: range,
    deadline: float | None,
    checkpoint_minutes: float,
    progress_seconds: float,
    say: Callable[[str], None],
) -> str | None:
    """Train `model` on the batches of `steps`, updating `state`: at each epoch's end,
    validate, log the epoch and keep the best weights; a checkpoint at least every
    `checkpoint_minutes`. Returns why it stopped before the last step: the signal's name,
    or "deadline" once `time.monotonic()` passes `deadline`; None if it did not."""
    batches, validation = run_data(config)
    monitor, better = task_named(config.task).monitor
    session_start_step, session_start_seconds = state.step, state.seconds
    tick = time.monotonic()
    last_checkpoint = last_progress = tick
    with (
        StopRequest() as stop,
        contextlib.closing(
            prefetched_batches(batches, steps, config.workers, config.use_multiprocessing)
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
                _write_checkpoint(model, state, run_dir)
                last_checkpoint = tick
            elif now - last_checkpoint >= 60 * checkpoint_minutes:
                _write_checkpoint(model, state, run_dir)
                last_checkpoint = now
            if now - last_progress >= progress_seconds:
                say(_progress_line(config, state, session_start_step, session_start_seconds))
                last_progress = now
            if stop.reason:
                return stop.reason
            if deadline is not None and now >= deadline:
                return "deadline"
    return None


def _write_checkpoint(model: keras.Model, state: LoopState, run_dir: Path) -> None:
    """Save the network's and the optimizer's values and `state` to the run's checkpoint."""
    save_checkpoint(
        run_dir / CHECKPOINT,
        model.get_weights(),
        [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables],
        asdict(state),
    )


def finish_run(
    config: TrainingConfig, run_dir: Path, state: LoopState, say: Callable[[str], None]
) -> TrainingOutcome:
    """Close a run that trained all its steps: its kept weights become `final.weights.h5`
    and its provenance is written (once: a finished run keeps its record)."""
    monitor = task_named(config.task).monitor[0]
    if state.best is None:
        raise RunDirectoryError(
            f"the run in {run_dir} finished without one epoch of finite {monitor}: it "
            "diverged; start a new run with a lower learning rate"
        )
    if not (run_dir / "provenance.json").is_file():
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
