"""Recorded validation runs: the boxes chapters 9 to 11 study on their validation images,
kept so that those chapters run in seconds instead of minutes.

Chapter 9 refines every validation image for up to six passes, with one view of each
window and with four (`refiner_tables.RefinerRuns`); chapter 10 refines it from each of
its nine starts and has the verifier score every box (`restart_tables.RestartRuns`);
chapter 11 starts from the same candidates and fits the generator's outline to them
(`outline_tables.OutlineRuns`). On 2,048 images that is minutes of two cores per chapter,
the same work every time. `python -m spaceship_utils.evaluate --record` writes these runs to
`spaceship_utils/recorded/validation/`, each with a checksum and two keys: the pipeline's
fingerprint (its networks' weights and its settings) and the digest of its inputs (the
images, and the candidates an outline fit starts from). A recording is read only when
both keys match, and only after a replay: the first `RUNS_REPLAY` images are computed
again and must agree with it (`check_runs_replay`).

Runs are frozen dataclasses of arrays and numbers. Their arrays hold one entry per image
on their last axis, or, for boxes (a field whose name ends in `boxes`), on the axis
before the box's five numbers: `first_images` cuts them by that rule.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from spaceship_utils.core.geometry import rotated_iou
from spaceship_utils.core.validation import has_box
from spaceship_utils.evaluation.recorded import (
    RECORD_COMMAND,
    RECORDED_DIR,
    REPLAY_IOU,
    RecordingError,
    checked_file,
    read_recorded_manifest,
    write_entry,
)

Runs = TypeVar("Runs")

RUNS_DIR = RECORDED_DIR / "validation"
RESTART_RUNS = "restart runs"
OUTLINE_RUNS = "outline runs"
LINE_FREE_OUTLINE_RUNS = "line-free outline runs"

RUNS_REPLAY = 32
"""How many of the first images are computed again before a recording of runs is used."""

RUNS_TOLERANCE = 0.02
RUNS_DIFFERING_SHARE = 1 / 8
"""A replayed number agrees with its recording within `RUNS_TOLERANCE` (absolute, or
relative for large ones), a replayed box when it overlaps its recorded one with IoU above
`recorded.REPLAY_IOU` (or both are absent). On another CPU, or with oneDNN off, a refiner
restarted on noise can end a few pixels elsewhere: about one value in thirty of a
`RestartRuns` moves beyond those tolerances (2,048 validation images, oneDNN off against
on, AMD EPYC), so up to `RUNS_DIFFERING_SHARE` of the replayed values may. A recording of
another pipeline differs in most of them."""


def refiner_runs_kind(passes: int) -> str:
    """The name under which chapter 9's refiner runs of `passes` passes are recorded."""
    return f"refiner runs, {passes} passes"


def inputs_digest(*arrays: np.ndarray) -> str:
    """The SHA-256 of arrays' shapes and float32 values, e.g. a set of validation images."""
    digest = hashlib.sha256()
    for array in arrays:
        values = np.ascontiguousarray(array, dtype=np.float32)
        digest.update(repr(values.shape).encode())
        digest.update(values.tobytes())
    return digest.hexdigest()


def _is_boxes(name: str) -> bool:
    return name.endswith("boxes")


def first_images(runs: Runs, count: int) -> Runs:
    """`runs` of the first `count` images only (see the module's rule for the image axis)."""
    changes = {}
    for field in dataclasses.fields(runs):
        value = getattr(runs, field.name)
        if isinstance(value, np.ndarray):
            cut = (..., slice(count), slice(None)) if _is_boxes(field.name) else (..., slice(count))
            changes[field.name] = value[cut]
    return dataclasses.replace(runs, **changes)


def differing_share(recorded: Runs, replayed: Runs) -> float:
    """The share of the replayed values that differ from the recorded ones beyond the
    tolerances (see `RUNS_DIFFERING_SHARE`): 1.0 if any number that is not an array
    (a threshold, a count) or any array's shape differs."""
    differ, total = 0, 0
    for field in dataclasses.fields(replayed):
        old, new = getattr(recorded, field.name), getattr(replayed, field.name)
        if not isinstance(new, np.ndarray):
            if old != new:
                return 1.0
            continue
        if old.shape != new.shape:
            return 1.0
        if _is_boxes(field.name):
            old, new = old.reshape(-1, 5), new.reshape(-1, 5)
            drawn = has_box(new)
            mismatched = drawn != has_box(old)
            both = drawn & ~mismatched
            if both.any():
                mismatched[both] = rotated_iou(new[both], old[both]) <= REPLAY_IOU
        else:
            mismatched = ~np.isclose(
                new, old, rtol=RUNS_TOLERANCE, atol=RUNS_TOLERANCE, equal_nan=True
            )
        differ += int(np.count_nonzero(mismatched))
        total += mismatched.size
    return differ / max(total, 1)


def check_runs_replay(kind: str, recording: Runs, replayed: Runs, count: int) -> None:
    """A RecordingError unless `replayed`, runs computed again on the first `count` images,
    agree with the recording of `kind` on them (`differing_share` at most
    `RUNS_DIFFERING_SHARE`)."""
    share = differing_share(first_images(recording, count), replayed)
    if share > RUNS_DIFFERING_SHARE:
        raise RecordingError(
            f"the recorded {kind} are not what this pipeline computes: {share:.0%} of the "
            f"values on the first {count} images differ. Other code, weights or settings? "
            f"Compute them afresh (RECOMPUTE = True) or record them again with "
            f"`{RECORD_COMMAND}`"
        )


def read_runs_manifest(runs_dir: Path = RUNS_DIR) -> dict:
    """{kind: entry} of the recorded runs in `runs_dir`; {} if there are none."""
    return read_recorded_manifest(runs_dir)


def find_runs(
    kind: str, runs_type: type[Runs], fingerprint: str, digest: str, runs_dir: Path = RUNS_DIR
) -> Runs | None:
    """The recorded runs of `kind` for the pipeline with this fingerprint on the inputs with
    this digest; None if none are recorded for both; a RecordingError naming the file if it
    is missing, corrupt or not a `runs_type`."""
    entry = read_runs_manifest(runs_dir).get(kind)
    if entry is None or entry["fingerprint"] != fingerprint or entry["inputs"] != digest:
        return None
    path = checked_file(entry, f"the recording of the {kind}", runs_dir)
    names = [field.name for field in dataclasses.fields(runs_type)]
    with np.load(path) as arrays:
        if sorted(arrays.files) != sorted(names):
            raise RecordingError(
                f"{path} does not hold the fields of {runs_type.__name__}: record it again "
                f"with `{RECORD_COMMAND}`"
            )
        values = {name: arrays[name] for name in names}
    return runs_type(**{name: _as_read(value) for name, value in values.items()})


def _as_read(value: np.ndarray):
    """A recorded field as the runs hold it: a number, or an array of float64 (stored as
    float32) or of its own type."""
    if value.ndim == 0:
        return value.item()
    return value.astype(np.float64) if np.issubdtype(value.dtype, np.floating) else value


def write_runs(kind: str, runs, fingerprint: str, digest: str, runs_dir: Path = RUNS_DIR) -> Path:
    """Write runs of `kind` (a dataclass of arrays and numbers) with their manifest entry
    (checksum, keys, machine, date); returns the file written. Arrays are kept as float32,
    integers and numbers as they are."""
    values = {}
    for field in dataclasses.fields(runs):
        value = getattr(runs, field.name)
        if value is None:
            raise ValueError(f"{kind} without {field.name} are not recorded: it is None")
        if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
            value = value.astype(np.float32)
        values[field.name] = np.asarray(value)
    return write_entry(kind, values, {"fingerprint": fingerprint, "inputs": digest}, runs_dir)


def recorded_or_computed(
    kind: str,
    runs_type: type[Runs],
    fingerprint: str,
    digest: str,
    compute: Callable[[int | None], Runs],
    runs_dir: Path = RUNS_DIR,
) -> Runs:
    """The recorded runs of `kind` if there are some for this fingerprint and digest and the
    replay agrees with them (`compute(RUNS_REPLAY)`: the runs of the first images), else
    `compute(None)`: the runs of every image."""
    recording = find_runs(kind, runs_type, fingerprint, digest, runs_dir)
    if recording is None:
        return compute(None)
    check_runs_replay(kind, recording, compute(RUNS_REPLAY), RUNS_REPLAY)
    return recording
