"""Recorded validation runs (evaluation.recorded_runs): cut by image, read back as written,
used only for the same pipeline and inputs and after a replay that agrees, refused when
corrupt; and the book's own recordings agree with the shipped pipeline."""

import json
from dataclasses import dataclass

import numpy as np
import pytest

from spaceship_utils.evaluation import recorded_runs
from spaceship_utils.evaluation.recorded import RecordingError
from spaceship_utils.evaluation.recorded_runs import (
    RUNS_REPLAY,
    differing_share,
    find_runs,
    first_images,
    inputs_digest,
    recorded_or_computed,
    write_runs,
)


@dataclass(frozen=True)
class StandInRuns:
    """Runs shaped like a RestartRuns: (starts, N, 5) boxes, (starts, N) scores, (N,)
    presence, a threshold and a count."""

    boxes: np.ndarray
    scores: np.ndarray
    presence: np.ndarray
    threshold: float
    voters: int


def _runs(images: int = 40, starts: int = 3, seed: int = 0) -> StandInRuns:
    rng = np.random.default_rng(seed)
    boxes = np.stack(
        [
            rng.uniform(40, 160, (starts, images)),
            rng.uniform(40, 160, (starts, images)),
            rng.uniform(0, 2 * np.pi, (starts, images)),
            rng.uniform(20, 40, (starts, images)),
            rng.uniform(20, 40, (starts, images)),
        ],
        axis=-1,
    )
    boxes[:, 0] = np.nan  # no box on the first image
    return StandInRuns(
        boxes=boxes,
        scores=rng.uniform(0, 1, (starts, images)),
        presence=rng.uniform(0, 1, images),
        threshold=0.5,
        voters=2,
    )


def test_first_images_cuts_boxes_before_their_five_numbers_and_the_rest_on_the_last_axis():
    runs = _runs(images=40, starts=3)
    first = first_images(runs, 7)
    assert first.boxes.shape == (3, 7, 5) and first.scores.shape == (3, 7)
    assert first.presence.shape == (7,)
    np.testing.assert_array_equal(first.scores, runs.scores[:, :7])
    assert (first.threshold, first.voters) == (0.5, 2)


def test_runs_are_read_back_as_written_for_their_own_pipeline_and_inputs(tmp_path):
    runs = _runs()
    write_runs("stand-in runs", runs, "print-a", "inputs-a", tmp_path)
    back = find_runs("stand-in runs", StandInRuns, "print-a", "inputs-a", tmp_path)
    assert back.boxes.dtype == np.float64 and back.boxes.shape == runs.boxes.shape
    np.testing.assert_allclose(back.boxes, runs.boxes, rtol=1e-6)  # float32 on disk
    assert back.threshold == 0.5 and back.voters == 2 and isinstance(back.voters, int)
    assert find_runs("stand-in runs", StandInRuns, "print-b", "inputs-a", tmp_path) is None
    assert find_runs("stand-in runs", StandInRuns, "print-a", "inputs-b", tmp_path) is None
    assert find_runs("other runs", StandInRuns, "print-a", "inputs-a", tmp_path) is None
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert {"file", "sha256", "fingerprint", "inputs", "machine", "date"} <= set(
        manifest["stand-in runs"]
    )


def test_a_corrupt_or_missing_recording_is_named(tmp_path):
    path = write_runs("stand-in runs", _runs(), "print", "inputs", tmp_path)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(RecordingError, match="stand_in_runs.npz does not match its checksum"):
        find_runs("stand-in runs", StandInRuns, "print", "inputs", tmp_path)
    path.unlink()
    with pytest.raises(RecordingError, match="recording of the stand-in runs is missing"):
        find_runs("stand-in runs", StandInRuns, "print", "inputs", tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(RecordingError, match="manifest.json is not valid JSON"):
        find_runs("stand-in runs", StandInRuns, "print", "inputs", tmp_path)


def test_the_differing_share_counts_moved_boxes_and_numbers_beyond_the_tolerances():
    runs = _runs(images=10, starts=2)
    assert differing_share(runs, runs) == 0.0
    boxes = runs.boxes.copy()
    boxes[0, 1, 0] += 20  # one box of 20 moves by 20 px
    scores = runs.scores + 0.001  # within the tolerance
    moved = StandInRuns(boxes, scores, runs.presence, runs.threshold, runs.voters)
    # 20 boxes, 20 scores and 10 presences: one value of 50 differs
    assert differing_share(runs, moved) == pytest.approx(1 / 50)
    other_threshold = StandInRuns(runs.boxes, runs.scores, runs.presence, 0.6, runs.voters)
    assert differing_share(runs, other_threshold) == 1.0


def test_a_recording_is_used_after_its_replay_and_refused_when_the_replay_disagrees(tmp_path):
    runs = _runs(images=100)
    calls = []

    def compute(count):
        calls.append(count)
        return runs if count is None else first_images(runs, count)

    def read(compute):
        return recorded_or_computed(
            "stand-in runs", StandInRuns, "print", "inputs", compute, tmp_path
        )

    assert read(compute) is runs and calls == [None]  # nothing recorded: computed
    write_runs("stand-in runs", runs, "print", "inputs", tmp_path)
    calls.clear()
    back = read(compute)
    assert calls == [RUNS_REPLAY] and back.scores.shape == runs.scores.shape

    def other_pipeline(count):
        return first_images(_runs(images=100, seed=1), count)

    with pytest.raises(RecordingError, match="not what this pipeline computes"):
        read(other_pipeline)


def test_the_inputs_digest_follows_values_and_shapes():
    images = np.zeros((4, 3, 3))
    assert inputs_digest(images) == inputs_digest(images.astype(np.float32))
    assert inputs_digest(images) != inputs_digest(images.reshape(4, 9))
    changed = images.copy()
    changed[3, 2, 2] = 1
    assert inputs_digest(images) != inputs_digest(changed)
    assert inputs_digest(images) != inputs_digest(images, images[:, 0])


def test_the_book_s_recorded_runs_are_all_there_and_intact():
    manifest = recorded_runs.read_runs_manifest()
    kinds = {
        recorded_runs.refiner_runs_kind(6),
        recorded_runs.RESTART_RUNS,
        recorded_runs.OUTLINE_RUNS,
        recorded_runs.LINE_FREE_OUTLINE_RUNS,
    }
    assert set(manifest) == kinds
    files = {entry["file"] for entry in manifest.values()}
    assert files == {path.name for path in recorded_runs.RUNS_DIR.glob("*.npz")}


@pytest.mark.slow
def test_the_book_s_recorded_runs_are_what_the_shipped_pipeline_computes(monkeypatch):
    """The proof behind chapters 9 to 11 reading them: on their validation images, the
    recordings are found for the shipped pipeline, and its replay agrees with them."""
    from spaceship_utils import load_pretrained
    from spaceship_utils.evaluate import (
        REFINER_RUNS_PASSES,
        RUNS_VALIDATION_SAMPLES,
        RUNS_VALIDATION_SEED,
    )
    from spaceship_utils.evaluation.outline_tables import outline_runs
    from spaceship_utils.evaluation.refiner_tables import refiner_runs
    from spaceship_utils.evaluation.restart_tables import restart_runs
    from spaceship_utils.networks.detector import DESIGNS
    from spaceship_utils.training.batches import validation_data

    replays = []
    check = recorded_runs.check_runs_replay
    monkeypatch.setattr(
        recorded_runs,
        "check_runs_replay",
        lambda kind, *args: replays.append(kind) or check(kind, *args),
    )
    model = load_pretrained("refined_detector")
    images = validation_data(
        "detector", RUNS_VALIDATION_SAMPLES, RUNS_VALIDATION_SEED, DESIGNS["fast"]
    )[0]
    refiner_runs(model.with_settings(verifier=None), images, REFINER_RUNS_PASSES, recorded=True)
    restarts = restart_runs(model, images, recorded=True)
    outline_runs(model, images, restarts, line_free=True, recorded=True)
    assert replays == [
        recorded_runs.refiner_runs_kind(REFINER_RUNS_PASSES),
        recorded_runs.RESTART_RUNS,
        recorded_runs.LINE_FREE_OUTLINE_RUNS,
    ]
    assert restarts.boxes.shape[1] == RUNS_VALIDATION_SAMPLES
