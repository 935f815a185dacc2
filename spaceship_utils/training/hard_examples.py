"""The refined detector's own answers: the boxes its verifier must judge, to train it on.

A verifier (`verifier`) first learns from boxes made by adding random errors to true ones.
The boxes it judges in the pipeline are the refiner's answers, and their errors follow
another distribution, most of all on the boxes it doubts, where it must pick among
restarts. Chapter 10 measured the cost: with the verifier trained on made-up boxes only,
letting the truth pick the start would score 2.2 points more on its validation images.

This module collects those answers from fresh images (`own_answer_windows`): the refined
box of every image the pipeline draws a box on, and, on the images whose box the verifier
doubts, the box from each restart start, each with whether it scores. `write_own_answers`
stores them chunk by chunk (so an interrupted collection resumes), `read_own_answers`
reads them back, the first chunks kept for validation, and `own_answer_batch` draws a
training batch from them, each window in a random one of its four `windows.WINDOW_VIEWS`
(a box's IoU does not change when the image and the box are mirrored together). A
verifier run with `own_answers` trains on them half of every batch
(`batches.GeneratedBatches`) and validates on the held-out ones.

    python -m spaceship_utils.own_answers ~/spaceship-runs/own-answers --chunks 120
"""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from pathlib import Path

import numpy as np

from spaceship_utils.core.validation import (
    check_boxes,
    check_count,
    check_images,
    check_same_length,
)
from spaceship_utils.data.generator import generate_batch
from spaceship_utils.detection.refined import RefinedDetectorPipeline
from spaceship_utils.networks.verifier import verification_targets, verifier_windows
from spaceship_utils.networks.windows import CROP_SIZE, window_views

CHUNK_IMAGES = 512
"""Fresh images per stored chunk: one chunk takes about 8 s on two CPU cores."""


OWN_ANSWERS_SEED = 2718
"""Chunk k's images come from `default_rng([OWN_ANSWERS_SEED, k])`: no other run of the
book draws from this seed, so the answers are of images no network trained or chose on.
The shipped verifier's second cycle learnt from these images; collect a later cycle's
answers from another seed (`--seed`), so that it learns from images it has not seen."""


OWN_ANSWER_SHARE = 0.5
"""Share of each verifier training batch drawn from the own answers (the rest is the
verifier's usual made-up boxes, which keep it calibrated on boxes the pipeline rarely
shows it)."""


COLLECTION_RECORD = "collection.json"
"""The file in a folder of own answers that says what collected its chunks
(`collection_record`)."""


COLLECTION_SETTINGS = ("passes", "views", "presence_threshold", "restart_below", "restart_views")
"""The refined detector's settings that change which boxes `own_answer_windows` collects."""


class OwnAnswersError(RuntimeError):
    """A folder of own answers is missing, empty, has a chunk that cannot be read, or was
    collected by another pipeline than the one asked to add to it."""


def own_answer_windows(
    model: RefinedDetectorPipeline, images: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The verifier windows (M, 64, 64, 2) float32 of the boxes the pipeline asks its
    verifier about on images (N, 200, 200) with labels (N, 5), and whether each box
    scores (M, 1) float32: first the refined box of every image the presence gate boxes,
    then, for the images whose box the verifier doubts (`Restarts.doubted_boxes`),
    the box from each restart start (`Restarts.restart_candidates`). The gate
    is the vote before the verifier's (`presence_threshold`): where the verifier votes too,
    the pipeline also judges and restarts the boxes of the few images its vote might still
    lift over its threshold, and these answers leave them out."""
    if model.verifier is None:
        raise ValueError("this refined detector has no verifier: it asks nothing to judge")
    images = check_images(images).astype(np.float32)
    labels = check_boxes(labels, "labels")
    check_same_length(images=images, labels=labels)
    boxes_by_pass, detector_presence = model.boxes_by_pass(images, model.passes)
    boxed = np.flatnonzero(
        model.vote.presence(images, detector_presence) >= model.presence_threshold
    )
    refined = boxes_by_pass[-1][boxed]
    doubted = boxed[model.restarts.doubted_boxes(images[boxed], refined)[1]]
    answers = [(boxed, refined)]
    if doubted.size:
        starts = model.restarts.restart_candidates(images[doubted], boxes_by_pass[0][doubted])
        answers += [(doubted, boxes) for boxes in starts]
    windows = [verifier_windows(images[which], boxes) for which, boxes in answers]
    targets = [verification_targets(boxes, labels[which]) for which, boxes in answers]
    if not windows:
        return np.zeros((0, CROP_SIZE, CROP_SIZE, 2), np.float32), np.zeros((0, 1), np.float32)
    return np.concatenate(windows), np.concatenate(targets)


def collection_record(model: RefinedDetectorPipeline, seed: int, chunk_images: int) -> dict:
    """What makes a collection's chunks: the seed and images of each chunk, the settings of
    `COLLECTION_SETTINGS`, and a SHA-256 digest of each network's weights (by role)."""
    networks = {
        "detector": model.network,
        "refiner": model.refiner,
        "classifier": model.classifier,
        "verifier": model.verifier,
    }
    return {
        "seed": int(seed),
        "chunk_images": int(chunk_images),
        "settings": {name: getattr(model.settings, name) for name in COLLECTION_SETTINGS},
        "weights": {
            role: weights_digest(network)
            for role, network in networks.items()
            if network is not None
        },
    }


def weights_digest(network) -> str:
    """SHA-256 (hex) of a Keras network's weight values, in the network's order."""
    digest = hashlib.sha256()
    for values in network.get_weights():
        digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def _check_same_collection(directory: Path, record: dict) -> None:
    """Write `record` to a new folder's `COLLECTION_RECORD`; refuse, naming what differs, to
    add chunks to a folder collected otherwise (or by a version that recorded nothing)."""
    path = directory / COLLECTION_RECORD
    if not path.is_file():
        if chunk_paths(directory):
            raise OwnAnswersError(
                f"{directory} holds chunks but no {COLLECTION_RECORD}, so what collected them "
                "is unknown: collect into another folder, or delete these chunks"
            )
        path.write_text(json.dumps(record, indent=1) + "\n")
        return
    saved, wanted = _flat(json.loads(path.read_text())), _flat(record)
    differing = sorted(
        key for key in saved.keys() | wanted.keys() if saved.get(key) != wanted.get(key)
    )
    if differing:
        raise OwnAnswersError(
            f"the chunks in {directory} were collected otherwise ({path}; differs in "
            f"{', '.join(differing)}): add to it with the same pipeline and settings, or "
            "collect into another folder"
        )


def _flat(record: dict, prefix: str = "") -> dict:
    """A nested record as one level, keys joined by dots ("settings.passes")."""
    flat = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[prefix + key] = value
    return flat


def chunk_path(directory: Path, index: int) -> Path:
    """Where chunk `index` of a folder of own answers lives."""
    return Path(directory) / f"chunk_{index:04d}.npz"


def chunk_paths(directory: Path) -> list[Path]:
    """The chunks a folder of own answers holds, in order (a `.partial` one left by a stop
    mid-write is not one of them)."""
    return sorted(Path(directory).glob("chunk_*[0-9].npz"))


def write_own_answers(
    model: RefinedDetectorPipeline,
    directory: str | Path,
    chunks: int,
    seed: int = OWN_ANSWERS_SEED,
    log=print,
    chunk_images: int = CHUNK_IMAGES,
    deadline: float | None = None,
) -> bool:
    """Collect the own answers of `chunks` chunks of `chunk_images` fresh images into
    `directory`, one `.npz` file per chunk (windows as float16, targets as uint8), and
    what collected them (`collection_record`, in `COLLECTION_RECORD`). Chunks already
    there are kept, so running it again resumes; with another pipeline, settings, seed or
    chunk size it raises `OwnAnswersError` instead of mixing two collections. Stops before
    a new chunk once `time.monotonic()` passes `deadline`; returns whether every chunk is
    there."""
    check_count(chunks, "chunks", minimum=1)
    check_count(chunk_images, "chunk_images", minimum=1)
    directory = Path(directory).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    _check_same_collection(directory, collection_record(model, seed, chunk_images))
    for index in range(chunks):
        path = chunk_path(directory, index)
        if path.is_file():
            continue
        if deadline is not None and time.monotonic() > deadline:
            return False
        started = time.monotonic()
        images, labels = generate_batch(chunk_images, np.random.default_rng([seed, index]))
        windows, targets = own_answer_windows(model, images, labels)
        partial = path.with_suffix(".partial.npz")  # a stop mid-write leaves no bad chunk
        np.savez(partial, windows=windows.astype(np.float16), targets=targets.astype(np.uint8))
        partial.replace(path)
        log(
            f"chunk {index + 1}/{chunks}: {len(windows)} windows, "
            f"{targets.mean() if len(targets) else 0:.0%} scoring, "
            f"{time.monotonic() - started:.0f} s"
        )
    return True


def read_own_answers(
    directory: str | Path, validation_windows: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The own answers of a folder, split for a training run: ((windows, targets) to train
    on, (windows, targets) to validate on). The first chunks, as many as hold
    `validation_windows` windows, are kept for validation (the first `validation_windows`
    of their windows, as float32); the training windows (M, 64, 64, 2) stay float16 and
    the targets (M, 1) are float32. Chunks count in order, so more chunks collected later
    only add training windows. A folder that is missing, too small, or has a chunk that
    cannot be read raises `OwnAnswersError` naming it."""
    directory = Path(directory).expanduser()
    check_count(validation_windows, "validation_windows", minimum=1)
    paths = chunk_paths(directory)
    if not paths:
        raise OwnAnswersError(
            f"no own answers in {directory}: collect them with "
            f"`python -m spaceship_utils.own_answers {directory} --chunks 120`"
        )
    chunks = [read_chunk(path, directory) for path in paths]
    held_out = int(np.searchsorted(np.cumsum([len(t) for _, t in chunks]), validation_windows)) + 1
    if held_out >= len(chunks):
        raise OwnAnswersError(
            f"{directory} holds too few own answers to keep {validation_windows:,} windows for "
            "validation and train on the rest: collect more chunks (--chunks)"
        )
    windows, targets = [w for w, _ in chunks], [t for _, t in chunks]
    training = (np.concatenate(windows[held_out:]), np.concatenate(targets[held_out:]))
    validation = (
        np.concatenate(windows[:held_out])[:validation_windows].astype(np.float32),
        np.concatenate(targets[:held_out])[:validation_windows],
    )
    return training, validation


def read_chunk(path: Path, directory: Path) -> tuple[np.ndarray, np.ndarray]:
    """One chunk of own answers: windows (M, 64, 64, 2) float16, targets (M, 1) float32."""
    try:
        with np.load(path) as chunk:
            windows, targets = chunk["windows"], chunk["targets"].astype(np.float32)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise OwnAnswersError(
            f"{path} cannot be read ({error}): delete it and run "
            f"`python -m spaceship_utils.own_answers {directory}` again to remake it"
        ) from error
    if windows.shape[1:] != (CROP_SIZE, CROP_SIZE, 2) or targets.shape != (len(windows), 1):
        raise OwnAnswersError(f"{path} is not a chunk of own answers: delete it and remake it")
    return windows, targets


def describe_own_answers(directory: str | Path) -> dict:
    """What a folder of own answers holds, for a run's provenance: its name, chunks,
    windows and the share of them whose box scores."""
    directory = Path(directory).expanduser()
    paths = chunk_paths(directory)
    targets = [read_chunk(path, directory)[1] for path in paths]
    windows = sum(len(chunk) for chunk in targets)
    scoring = sum(float(chunk.sum()) for chunk in targets)
    return {
        "folder": directory.name,
        "chunks": len(targets),
        "windows": windows,
        "scoring_share": round(scoring / max(windows, 1), 4),
    }


def own_answer_batch(
    windows: np.ndarray, targets: np.ndarray, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """`count` own answers drawn with `rng` from windows (M, S, S, 2) and targets (M, 1),
    each window in a random one of its four views: (count, S, S, 2) float32, (count, 1)."""
    check_count(count, "count", minimum=1)
    check_same_length(windows=windows, targets=targets)
    picked = rng.integers(0, len(windows), size=count)
    views = rng.integers(0, 4, size=count)
    viewed = window_views(windows[picked]).reshape(4, count, *windows.shape[1:])
    return viewed[views, np.arange(count)].astype(np.float32), targets[picked]
