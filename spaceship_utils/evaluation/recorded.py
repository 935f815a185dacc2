"""Recorded predictions: what a pipeline answered on the 10,000 official samples, kept so
that a chapter can score it again in seconds instead of minutes.

Scoring the shipped pipeline on 10,000 samples takes minutes on two cores, and the
chapters of part 3 each start from a fresh kernel. `python -m spaceship_utils.evaluate
--record` runs every pipeline the book scores once and writes its boxes, raw boxes and
presence (float32) to `spaceship_utils/recorded/`, with a checksum in its manifest. A
recording is read only for the pipeline that made it: its manifest entry keeps the
pipeline's fingerprint (`pipeline_fingerprint`: its networks' weights and its settings),
and another fingerprint means no recording. It is then used only after a replay: the
pipeline predicts the first `REPLAY_SAMPLES` samples again, and they must match the
recording (`check_replay`), so that a recording also proves itself on the reader's CPU.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spaceship_utils.core.geometry import rotated_iou
from spaceship_utils.core.runtime import describe_machine, describe_runtime
from spaceship_utils.core.validation import LABEL_SIZE, has_box
from spaceship_utils.detection.pipelines import Predictions

RECORDED_DIR = Path(__file__).resolve().parents[1] / "recorded"
RECORD_COMMAND = "python -m spaceship_utils.evaluate --record"

REPLAY_SAMPLES = 16
"""How many of the first samples a pipeline predicts again before its recording is used."""

REPLAY_IOU = 0.99
PRESENCE_TOLERANCE = 0.02
"""A replayed box must overlap its recorded one with IoU above `REPLAY_IOU` (or both be
absent), its presence lie within `PRESENCE_TOLERANCE`. Two CPUs, or two batch sizes on one,
differ by 1e-5 to 1e-3 px in a network's box; the verifier, which reads a window cut around
the final box, turns that into up to about a hundredth of presence. The raw boxes of the
images without a drawn box are not compared: on an empty image they sit on noise and move
the most. A few samples may differ by more (`replay_flips_allowed`): a near tie between two
candidates, or a presence a hair from its threshold, can fall the other way."""


def replay_flips_allowed(count: int) -> int:
    """How many of `count` replayed samples may differ beyond the tolerances: one in 32,
    at least one."""
    return max(1, round(count / 32))


FIELDS = ("boxes", "raw_boxes", "presence")


class RecordingError(ValueError):
    """A recording that is missing, corrupt, or not what the pipeline answers."""


@dataclass(frozen=True)
class Recording:
    """One pipeline's predictions on `samples` official samples after np.random.seed(seed):
    boxes and raw boxes (samples, 5) in px and rad, presence (samples,); `seconds` as timed
    when it was recorded (generation, inference, scoring)."""

    name: str
    samples: int
    seed: int
    boxes: np.ndarray
    raw_boxes: np.ndarray
    presence: np.ndarray
    seconds: dict[str, float]

    def predictions(self, chunk: slice) -> Predictions:
        """The recorded `Predictions` of the samples in `chunk`, as float64."""
        return Predictions(
            boxes=self.boxes[chunk].astype(np.float64),
            presence=self.presence[chunk].astype(np.float64),
            raw_boxes=self.raw_boxes[chunk].astype(np.float64),
        )


def pipeline_fingerprint(model) -> str:
    """The SHA-256 of a pipeline's settings and of the weights of its networks, in order:
    the same for the same weights files and settings on any machine. A refined detector's
    settings are its `settings`; another pipeline's, its class, its presence gate and its
    views (`symmetry.SymmetryAveraged`)."""
    settings = getattr(model, "settings", None)
    if settings is None:
        views = getattr(model, "symmetries", None)
        settings = (type(model).__name__, getattr(model, "gate_threshold", None), views)
    digest = hashlib.sha256(repr(settings).encode())
    for network in model.networks:
        for weights in network.get_weights():
            digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()


def file_name(name: str) -> str:
    """The recording's file name for a pipeline's name: 'with the verifier's vote' ->
    'with_the_verifier_s_vote.npz'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") + ".npz"


def read_recorded_manifest(recorded_dir: Path = RECORDED_DIR) -> dict:
    """{name: entry} of the recordings in `recorded_dir` (its manifest.json); {} if none."""
    path = recorded_dir / "manifest.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise RecordingError(
            f"{path} is not valid JSON ({error}): restore it with `git checkout -- "
            f"{recorded_dir}` or record again with `{RECORD_COMMAND}`"
        ) from error


def checked_file(entry: dict, what: str, recorded_dir: Path) -> Path:
    """The file of a manifest entry in `recorded_dir`, after checking that it exists and
    matches its checksum; a RecordingError naming it and how to restore it otherwise.
    `what` names the recording in the message, e.g. "the recording of 'detector'"."""
    path = recorded_dir / entry["file"]
    how = f"restore it with `git checkout -- {path.name}` in {recorded_dir} or `{RECORD_COMMAND}`"
    if not path.exists():
        raise RecordingError(f"{what} is missing: {path}; {how}")
    if hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
        raise RecordingError(f"{path} does not match its checksum in the manifest; {how}")
    return path


def write_entry(name: str, arrays: dict[str, np.ndarray], keys: dict, recorded_dir: Path) -> Path:
    """Write `arrays` to `recorded_dir` under `name`'s file name, and its manifest entry:
    `keys` (what the recording is of), its checksum, the machine, the runtime and the date.
    Returns the file written."""
    recorded_dir.mkdir(parents=True, exist_ok=True)
    path = recorded_dir / file_name(name)
    np.savez_compressed(path, **arrays)
    manifest = read_recorded_manifest(recorded_dir)
    manifest[name] = {
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        **keys,
        "machine": describe_machine(),
        "runtime": describe_runtime(),
        "date": datetime.date.today().isoformat(),
    }
    (recorded_dir / "manifest.json").write_text(
        json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    )
    return path


def find_recording(
    name: str, samples: int, seed: int, fingerprint: str, recorded_dir: Path = RECORDED_DIR
) -> Recording | None:
    """The recording of pipeline `name` on `samples` samples after seed `seed` by the
    pipeline of `fingerprint` (`pipeline_fingerprint`), None if there is none for that
    name, count, seed and fingerprint; a RecordingError naming the file if it is missing or
    its checksum does not match the manifest."""
    entry = read_recorded_manifest(recorded_dir).get(name)
    keys = (samples, seed, fingerprint)
    if entry is None or (entry["samples"], entry["seed"], entry.get("fingerprint")) != keys:
        return None
    path = checked_file(entry, f"the recording of {name!r}", recorded_dir)
    with np.load(path) as arrays:
        values = {key: arrays[key] for key in FIELDS}
    return Recording(name, samples, seed, seconds=entry["seconds"], **values)


def write_recording(
    name: str,
    predictions: Predictions,
    samples: int,
    seed: int,
    seconds: dict[str, float],
    fingerprint: str,
    recorded_dir: Path = RECORDED_DIR,
) -> Path:
    """Write one pipeline's predictions (`Predictions`, or an `Evaluation`: anything with
    boxes, raw_boxes and presence) on `samples` official samples and its manifest entry
    (checksum, seed, the pipeline's `fingerprint`, timings, machine, date); returns the
    file written."""
    values = {key: np.asarray(getattr(predictions, key), dtype=np.float32) for key in FIELDS}
    if values["boxes"].shape != (samples, LABEL_SIZE):
        raise ValueError(f"expected boxes ({samples}, {LABEL_SIZE}), got {values['boxes'].shape}")
    keys = {
        "samples": samples,
        "seed": seed,
        "fingerprint": fingerprint,
        "seconds": {key: round(value, 1) for key, value in seconds.items()},
    }
    return write_entry(name, values, keys, recorded_dir)


def replay_mismatches(recording: Recording, replayed: Predictions) -> np.ndarray:
    """Indices among the first len(replayed.boxes) samples where the replayed predictions
    differ from the recording by more than two CPUs' floats do: a box drawn in one and not
    the other, drawn boxes overlapping with IoU <= `REPLAY_IOU`, or presence further apart
    than `PRESENCE_TOLERANCE`."""
    count = len(replayed.boxes)
    recorded = recording.predictions(slice(0, count))
    differ = np.abs(replayed.presence - recorded.presence) > PRESENCE_TOLERANCE
    drawn = has_box(replayed.boxes)
    differ |= drawn != has_box(recorded.boxes)
    both = drawn & has_box(recorded.boxes)
    overlaps = np.ones(count)
    if both.any():
        overlaps[both] = rotated_iou(replayed.boxes[both], recorded.boxes[both])
    return np.flatnonzero(differ | (overlaps <= REPLAY_IOU))


def check_replay(recording: Recording, replayed: Predictions) -> None:
    """A RecordingError unless the replayed predictions of the first samples match the
    recording, with at most `replay_flips_allowed` samples apart (see `replay_mismatches`)."""
    mismatched = replay_mismatches(recording, replayed)
    if len(mismatched) > replay_flips_allowed(len(replayed.boxes)):
        raise RecordingError(
            f"the recording of {recording.name!r} is not what this pipeline answers: "
            f"{len(mismatched)} of the first {len(replayed.boxes)} samples differ (samples "
            f"{mismatched.tolist()}). Other weights or settings? Score it afresh (no "
            f"recording) or record it again with `{RECORD_COMMAND}`"
        )
