"""What a training run leaves in its run directory, and how to read it back.

A run directory holds:

- `config.json`: the `TrainingConfig` the run was started with,
- `checkpoint.npz`: weights, optimizer state and loop position, rewritten at least every
  few minutes (one file, replaced atomically, so a kill never leaves half of it),
- `history.csv`: one row per epoch (training and validation metrics, images seen, seconds),
- `best.weights.h5`: the weights of the best epoch so far,
- `initial_weights.json`: for a run started from trained weights, that file's name and
  SHA-256, taken when it was loaded,
- `final.weights.h5` and `provenance.json` once the run is finished.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from spaceship_utils.core.tables import format_table

CHECKPOINT = "checkpoint.npz"


HISTORY = "history.csv"


INITIAL_WEIGHTS = "initial_weights.json"


class RunDirectoryError(ValueError):
    """A run directory that cannot be resumed: unreadable checkpoint or other settings."""


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_history(path: str | Path) -> dict[str, list[float]]:
    """A history CSV as {column: values by epoch}; an epoch logged twice is kept once."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_epoch = {int(row["epoch"]): row for row in rows}
    ordered = [by_epoch[epoch] for epoch in sorted(by_epoch)]
    columns = [name for name in (rows[0] if rows else {}) if name != "epoch"]
    return {name: [float(row[name]) for row in ordered] for name in columns}


def append_history_row(path: str | Path, row: dict[str, float]) -> None:
    """Append one epoch's row to a history CSV, writing the header first if the file is new.

    The row must have the file's columns, in the file's order: RunDirectoryError otherwise.
    A last line cut short (the process was killed while writing it) is dropped first.
    """
    path = Path(path)
    if path.exists():
        _drop_unfinished_line(path)
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        with open(path, newline="") as handle:
            header = next(csv.reader(handle), [])
        if header != list(row):
            raise RunDirectoryError(
                f"{path} has the columns {header}, but this run writes {list(row)}: it "
                "belongs to another kind of run; choose another run directory"
            )
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def best_epoch(history: dict[str, list[float]], metric: str, higher_is_better: bool) -> int:
    """The epoch (counted from 1) with the best `metric`; the first of equals."""
    if metric not in history or not history[metric]:
        raise ValueError(f"the history has no {metric!r} column; it has {sorted(history)}")
    values = np.asarray(history[metric], dtype=np.float64)
    return int(np.argmax(values) if higher_is_better else np.argmin(values)) + 1


def raw_weights_history(history: dict[str, list[float]]) -> dict[str, list[float]]:
    """The history of a run that averaged its weights (`ema_momentum`), as its raw weights
    saw it: every `raw_val_*` column renamed `val_*`, the averaged `val_*` columns dropped."""
    raw = {name: values for name, values in history.items() if name.startswith("raw_val_")}
    if not raw:
        raise ValueError(
            "the history has no raw_val_* columns: the run did not average its weights"
        )
    others = {
        name: values
        for name, values in history.items()
        if not name.startswith(("val_", "raw_val_"))
    }
    return others | {name.removeprefix("raw_"): values for name, values in raw.items()}


def history_table(history: dict[str, list[float]], rows: int = 6, mark: int | None = None) -> str:
    """A compact text table of a run: about `rows` epochs spread over the run, always the last
    (every epoch when the run has no more than `rows`), and epoch `mark` starred if given
    (e.g. `best_epoch`'s, whose weights a run keeps).

    Columns: epoch (counted from 1), images seen, then every metric in the history.
    """
    epochs = len(next(iter(history.values()), []))
    if epochs == 0:
        raise ValueError("the history holds no epoch")
    if mark is not None and not 1 <= mark <= epochs:
        raise ValueError(f"mark must be an epoch from 1 to {epochs}, got {mark}")
    if epochs <= rows:
        chosen = list(range(1, epochs + 1))
    else:
        chosen = sorted({round(i) for i in np.geomspace(1, epochs, num=rows)} | {mark or 1})
    metrics = [name for name in history if name not in ("images", "seconds", "images_per_second")]
    header = ["epoch", "images", *metrics]
    body = [
        [
            f"{epoch}*" if epoch == mark else str(epoch),
            f"{history['images'][epoch - 1]:,.0f}" if "images" in history else "-",
        ]
        + [f"{history[name][epoch - 1]:.4f}" for name in metrics]
        for epoch in chosen
    ]
    return format_table(header, body)


def _drop_unfinished_line(path: Path) -> None:
    text = path.read_bytes()
    if text and not text.endswith(b"\n"):
        path.write_bytes(text[: text.rfind(b"\n") + 1])


def read_timing(run_dir: str | Path) -> dict[str, float]:
    """Training seconds, images and median images per second of a run, from its history.csv.

    The seconds count training steps and validation, not start-up; the median skips the
    first epoch's compile time.
    """
    path = Path(run_dir) / HISTORY
    history = read_history(path) if path.is_file() else {}
    if not history.get("seconds"):
        raise ValueError(f"{path} has no finished epoch")
    speeds = sorted(history["images_per_second"])
    return {
        "seconds": history["seconds"][-1],
        "images": history["images"][-1],
        "images_per_second": speeds[len(speeds) // 2],
        "epochs": len(history["seconds"]),
    }


def save_checkpoint(path: str | Path, weights: list, optimizer: list, state: dict) -> None:
    """Write weights, optimizer variables and the loop state to one .npz file, atomically."""
    path = Path(path)
    arrays = {f"weight_{i}": np.asarray(w) for i, w in enumerate(weights)}
    arrays |= {f"optimizer_{i}": np.asarray(v) for i, v in enumerate(optimizer)}
    arrays["state"] = np.array(json.dumps(state))
    partial = path.with_name(path.name + ".partial.npz")
    with open(partial, "wb") as handle:
        np.savez(handle, **arrays)
        handle.flush()
        os.fsync(handle.fileno())  # on disk before it replaces the last good checkpoint
    os.replace(partial, path)


def load_checkpoint(path: str | Path) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    """Weights, optimizer variables and loop state from `save_checkpoint`'s file."""
    path = Path(path)
    try:
        with np.load(path) as stored:
            weights = _numbered(stored, "weight_")
            optimizer = _numbered(stored, "optimizer_")
            state = json.loads(str(stored["state"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise RunDirectoryError(
            f"checkpoint {path} is unreadable ({error}); delete it to restart the run "
            "from its beginning"
        ) from error
    return weights, optimizer, state


def _numbered(stored, prefix: str) -> list[np.ndarray]:
    names = sorted(
        (n for n in stored.files if n.startswith(prefix)), key=lambda n: int(n[len(prefix) :])
    )
    return [stored[name] for name in names]


def read_config(run_dir: str | Path) -> dict:
    """The `TrainingConfig` (as a dict) a run directory was started with."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise RunDirectoryError(f"{path} is missing: {run_dir} is not a training run")
    return json.loads(path.read_text())


def copy_run_record(run_dir: str | Path, destination: str | Path) -> Path:
    """Copy a run's config.json and history.csv (no weights) to `destination`, for the book."""
    run_dir, destination = Path(run_dir).expanduser(), Path(destination)
    read_timing(run_dir)  # refuses a run with no finished epoch
    read_config(run_dir)
    destination.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", HISTORY):
        (destination / name).write_bytes((run_dir / name).read_bytes())
    return destination


def _flat_config(config: dict) -> dict:
    """Settings and design options side by side; a setting of None counts as unset."""
    options = config.get("detector_options", {})
    flat = {key: value for key, value in config.items() if key != "detector_options"}
    flat |= options
    return {key: value for key, value in flat.items() if value is not None}


def _setting(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def config_changes(config: dict, reference: dict) -> str:
    """What `config` sets differently from `reference`, e.g. 'schedule=constant' ('-': nothing).

    Design options count as settings of their own; bookkeeping (the worker count) does not.
    """
    ours, theirs = _flat_config(config), _flat_config(reference)
    ignored = {"workers", "use_multiprocessing"}
    changes = [
        f"{key}={_setting(ours.get(key, 'default'))}"
        for key in sorted(set(ours) | set(theirs))
        if key not in ignored and ours.get(key, "default") != theirs.get(key, "default")
    ]
    return ", ".join(changes) or "-"


def compare_runs(
    run_dirs: dict[str, str | Path],
    metric: str,
    reference: str,
    costs: dict[str, tuple[int, float]] | None = None,
    higher_is_better: bool = True,
) -> str:
    """A text table of runs side by side: what each changes from the `reference` run, its
    training images, the validation `metric` at its last epoch, that value's difference
    from the reference's in points (hundredths), and its best epoch's value (the highest,
    or the lowest for a loss: `higher_is_better=False`).

    `costs`, if given, maps each run to (trainable parameters, GFLOPs per image), shown as
    two more columns. No timings: runs that shared a machine with other work have slowed
    each other down, so compare designs' speed with a benchmark on an idle machine instead.
    """
    if reference not in run_dirs:
        raise ValueError(f"the reference run {reference!r} is not among {sorted(run_dirs)}")
    if costs is not None and set(costs) != set(run_dirs):
        raise ValueError(f"costs name runs {sorted(costs)}, the runs are {sorted(run_dirs)}")
    run_dirs = {name: Path(run_dir).expanduser() for name, run_dir in run_dirs.items()}
    base = read_config(run_dirs[reference])
    histories = {name: read_history(run_dir / HISTORY) for name, run_dir in run_dirs.items()}
    for name, history in histories.items():
        if metric not in history:
            raise ValueError(f"{run_dirs[name]} has no {metric!r} column; it has {sorted(history)}")
    reference_last = histories[reference][metric][-1]
    rows = []
    for name, run_dir in run_dirs.items():
        values = histories[name][metric]
        row = [name, config_changes(read_config(run_dir), base)]
        if costs is not None:
            parameters, gflops = costs[name]
            row += [f"{parameters:,}", f"{gflops:.3f}"]
        row += [
            f"{read_timing(run_dir)['images']:,.0f}",
            f"{values[-1]:.4f}",
            f"{100 * (values[-1] - reference_last):+.1f}",
            f"{(max if higher_is_better else min)(values):.4f}",
        ]
        rows.append(row)
    header = ["run", "changes", *(("params", "GFLOPs") if costs is not None else ())]
    header += ["images", f"last {metric}", "points", "best"]
    return format_table(header, rows)
