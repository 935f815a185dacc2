"""What a training run leaves in its run directory, and how to read it back.

A run directory holds:

- `config.json`: the `TrainingConfig` the run was started with,
- `checkpoint.npz`: weights, optimizer state and loop position, rewritten at least every
  few minutes (one file, replaced atomically, so a kill never leaves half of it),
- `history.csv`: one row per epoch (training and validation metrics, images seen, seconds),
- `best.weights.h5`: the weights of the best epoch so far,
- `final.weights.h5` and `provenance.json` once the run is finished.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from .tables import format_table

CHECKPOINT = "checkpoint.npz"
HISTORY = "history.csv"


class RunDirectoryError(ValueError):
    """A run directory that cannot be resumed: unreadable checkpoint or other settings."""


def read_history(path: str | Path) -> dict[str, list[float]]:
    """A history CSV as {column: values by epoch}; an epoch logged twice is kept once."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_epoch = {int(row["epoch"]): row for row in rows}
    ordered = [by_epoch[epoch] for epoch in sorted(by_epoch)]
    columns = [name for name in (rows[0] if rows else {}) if name != "epoch"]
    return {name: [float(row[name]) for row in ordered] for name in columns}


def append_history_row(path: str | Path, row: dict[str, float]) -> None:
    """Append one epoch's row to a history CSV, writing the header first if the file is new."""
    path = Path(path)
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def history_table(history: dict[str, list[float]], rows: int = 6) -> str:
    """A compact text table of a run: about `rows` epochs spread over the run, always the last.

    Columns: epoch (counted from 1), images seen, then every metric in the history.
    """
    epochs = len(next(iter(history.values()), []))
    if epochs == 0:
        raise ValueError("the history holds no epoch")
    chosen = sorted({round(i) for i in np.geomspace(1, epochs, num=min(rows, epochs))})
    metrics = [name for name in history if name not in ("images", "seconds", "images_per_second")]
    header = ["epoch", "images", *metrics]
    body = [
        [str(epoch), f"{history['images'][epoch - 1]:,.0f}" if "images" in history else "-"]
        + [f"{history[name][epoch - 1]:.4f}" for name in metrics]
        for epoch in chosen
    ]
    return format_table(header, body)


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
    np.savez(partial, **arrays)
    os.replace(partial, path)


def load_checkpoint(path: str | Path) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    """Weights, optimizer variables and loop state from `save_checkpoint`'s file."""
    path = Path(path)
    try:
        with np.load(path) as stored:
            weights = _numbered(stored, "weight_")
            optimizer = _numbered(stored, "optimizer_")
            state = json.loads(str(stored["state"]))
    except (OSError, ValueError, KeyError) as error:
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
