"""What a training run is: its settings (`TrainingConfig`, starting from the task's recipe)
and its learning-rate schedules."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spaceship_utils.core.runtime import import_keras
from spaceship_utils.core.validation import check_count
from spaceship_utils.networks.detector import split_design
from spaceship_utils.networks.detector_loss import design_loss
from spaceship_utils.training.runs import (
    best_epoch,
)
from spaceship_utils.training.tasks import task_named

keras = import_keras()


ops = keras.ops


DEFAULT_RUNS = Path.home() / "spaceship-runs"
"""Where the command line keeps runs: outside the work tree, so a clean checkout keeps them."""


def kept_epoch(history: dict[str, list[float]], task: str) -> int:
    """The epoch (from 1) whose weights a `task` run keeps: the best by its `Task.monitor`."""
    metric, pick = task_named(task).monitor
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

    `epochs=None` takes the task's count from its recipe (`tasks.TASKS`);
    `TrainingConfig.recipe(task)` takes the whole recipe (the detector's differs in more
    than epochs). `schedule` is one of `SCHEDULES`: 'constant' (the seed), 'cosine' (decay
    to 1 % over the whole run, after a 2 % warm-up) or 'hold_cosine' (`HoldThenCosine`: the
    peak rate until 80 % of the run).

    `ema_momentum` (e.g. 0.999) makes Adam keep an exponential moving average of the weights;
    validation, the best epoch's weights and so the shipped weights then use the average,
    and the history adds the raw weights' numbers as `raw_val_*`. None: no averaging.

    `initial_weights` (a `.weights.h5` file of the same network, e.g. a finished run's
    `final.weights.h5`; stored as an absolute path) starts the run from those weights
    instead of random ones: a second training cycle on fresh data (another `seed`), with a
    new optimizer and schedule; a verifier takes a refiner's file and copies its trunk
    (`verifier.copy_refiner_trunk`), or a verifier's file whole. Only a fresh start reads
    the file; a resume reads its checkpoint.

    `own_answers` (verifier only: a folder written by `hard_examples.write_own_answers`, stored
    as an absolute path) makes `OWN_ANSWER_SHARE` of every batch the refined detector's own
    answers instead of made-up boxes, and the run validates on `validation_samples` own
    answers of the folder's first chunks, kept out of training (`hard_examples.read_own_answers`).
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
        task = task_named(self.task)
        if self.epochs is None:
            self.epochs = task.recipe["epochs"]
        for name in ("epochs", "steps_per_epoch", "batch_size", "validation_samples", "workers"):
            check_count(getattr(self, name), name, minimum=1)
        check_count(self.seed, "seed", minimum=0)
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.ema_momentum is not None and not 0 < self.ema_momentum < 1:
            raise ValueError(f"ema_momentum must be in (0, 1) or None, got {self.ema_momentum}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if task.takes_design:
            split_design(self.detector_options)  # names an unknown option now, not hours later
            design_loss(self.detector_options)
        else:
            unknown = sorted(set(self.detector_options) - set(task.design_options))
            if unknown:
                raise ValueError(
                    f"the {self.task} has no option {', '.join(unknown)} (detector_options); "
                    f"it takes {', '.join(task.design_options) or 'none'}"
                )
        if "rank" in self.detector_options:
            check_count(self.detector_options["rank"], "rank", minimum=1)
        if self.initial_weights is not None:
            self.initial_weights = str(Path(self.initial_weights).expanduser().resolve())
        if self.own_answers is not None:
            if not task.reads_hard_examples:
                raise ValueError(f"own_answers train the verifier only, not the {self.task}")
            self.own_answers = str(Path(self.own_answers).expanduser().resolve())

    @classmethod
    def recipe(cls, task: str, **changes) -> TrainingConfig:
        """The recipe of `task` (`tasks.TASKS`) with `changes` on top (None values are
        ignored)."""
        settings = task_named(task).recipe | {
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
