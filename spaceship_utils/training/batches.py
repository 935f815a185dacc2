"""The batches of a training run, each reproducible from (seed, epoch, index), so a stopped
run resumes on exactly the images it would have seen; and the fixed validation data."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import signal
from collections import deque
from collections.abc import Iterator

import numpy as np

from spaceship_utils.core.runtime import import_keras
from spaceship_utils.core.validation import check_count
from spaceship_utils.data.generator import generate_batch
from spaceship_utils.networks.windows import (
    CLEAN_WINDOWS,
)
from spaceship_utils.training.hard_examples import (
    OWN_ANSWER_SHARE,
    own_answer_batch,
)
from spaceship_utils.training.tasks import task_inputs_and_targets, task_named

keras = import_keras()


class GeneratedBatches(keras.utils.PyDataset):
    """Fresh training batches, each reproducible from (seed, epoch, index in epoch).

    `batch_at_step(step)` is what the training loop reads. `__getitem__` reads the batches
    of epoch `epoch`, which `on_epoch_begin` advances from the second epoch on, so
    `model.fit(batches, epochs=E)` trains on the images `train_model` trains on, in the
    same epochs, none twice. The refiner's first `clean_windows` windows come from images
    without noise or lines (its curriculum; 0 for a run that starts from trained weights);
    the other tasks have no curriculum and ignore it. Given `own_answers` (windows, targets
    from `hard_examples.read_own_answers`), a verifier's batches take `OWN_ANSWER_SHARE` of
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
        kind = task_named(task)  # a ValueError naming the tasks there are
        self.task = task
        self.batch_size = check_count(batch_size, "batch_size", minimum=1)
        self.steps_per_epoch = check_count(steps_per_epoch, "steps_per_epoch", minimum=1)
        self.seed = seed
        self.design = design
        check_count(clean_windows, "clean_windows", minimum=0)
        self.clean_windows = clean_windows if kind.starts_clean else 0
        if own_answers is not None and not kind.reads_hard_examples:
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
            ship_probability=task_named(self.task).ship_share,
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
    images, labels = generate_batch(samples, rng, ship_probability=task_named(task).ship_share)
    inputs, targets = task_inputs_and_targets(task, images, labels, design, rng)
    return inputs, targets, labels.astype(np.float64)
