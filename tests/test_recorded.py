"""Recorded predictions (evaluation.recorded): read back as written, refused when corrupt or
when the pipeline at hand answers otherwise, and the book's own recordings intact."""

import json
import subprocess
import sys

import numpy as np
import pytest

from spaceship_utils.detection.pipelines import Predictions
from spaceship_utils.evaluation import harness, recorded
from spaceship_utils.evaluation.harness import evaluate_model
from spaceship_utils.evaluation.recorded import (
    REPLAY_SAMPLES,
    RecordingError,
    check_replay,
    find_recording,
    pipeline_fingerprint,
    read_recorded_manifest,
    write_recording,
)


class BoxFromPixels:
    """A stand-in pipeline whose answer depends on the image only: a box whose centre moves
    with the image's mean pixel (shifted by `shift` px), presence = that mean. Its
    fingerprint does not see `shift`: it plays a pipeline that another CPU runs otherwise."""

    settings = "box from pixels"
    networks = ()

    def __init__(self, shift: float = 0.0):
        self.shift = shift

    def predict_details(self, images):
        means = images.mean(axis=(1, 2))
        boxes = np.stack(
            [
                100 + 40 * means + self.shift,
                np.full_like(means, 90),
                0.3 + means,
                24 + 0 * means,
                30 + 0 * means,
            ],
            axis=1,
        ).astype(np.float64)
        return Predictions(boxes=boxes, presence=means.astype(np.float64), raw_boxes=boxes)


@pytest.fixture
def recordings(tmp_path, monkeypatch):
    """Recordings read from and written to a temporary folder."""
    monkeypatch.setattr(
        harness,
        "find_recording",
        lambda name, samples, seed, fingerprint: find_recording(
            name, samples, seed, fingerprint, tmp_path
        ),
    )
    return tmp_path


def _record(folder, model, name="stand-in", samples=40, seed=3):
    result = evaluate_model(model, samples=samples, seed=seed, gallery_size=0)
    fingerprint = pipeline_fingerprint(model)
    write_recording(name, result, samples, seed, result.seconds, fingerprint, folder)
    return result


FINGERPRINT = pipeline_fingerprint(BoxFromPixels())


def test_a_recording_reads_back_what_was_written(recordings):
    fresh = _record(recordings, BoxFromPixels())
    entry = read_recorded_manifest(recordings)["stand-in"]
    assert (entry["samples"], entry["seed"], entry["file"]) == (40, 3, "stand_in.npz")
    assert entry["fingerprint"] == FINGERPRINT
    replayed = evaluate_model(BoxFromPixels(), samples=40, seed=3, recorded="stand-in")
    assert replayed.recorded and not fresh.recorded
    np.testing.assert_allclose(replayed.boxes, fresh.boxes, rtol=1e-6)
    np.testing.assert_array_equal(replayed.labels, fresh.labels)
    assert replayed.score == fresh.score
    assert "when recorded" in replayed.summary()


def test_no_recording_for_other_samples_means_a_fresh_evaluation(recordings):
    _record(recordings, BoxFromPixels())
    assert find_recording("stand-in", 41, 3, FINGERPRINT, recordings) is None
    assert find_recording("stand-in", 40, 4, FINGERPRINT, recordings) is None
    assert find_recording("another", 40, 3, FINGERPRINT, recordings) is None
    result = evaluate_model(BoxFromPixels(), samples=41, seed=3, recorded="stand-in")
    assert not result.recorded


class OtherSettings(BoxFromPixels):
    settings = "box from pixels, other settings"


def test_another_pipeline_s_recording_is_not_read_even_if_it_answers_alike(recordings):
    _record(recordings, BoxFromPixels())
    other = OtherSettings()
    assert pipeline_fingerprint(other) != FINGERPRINT
    assert find_recording("stand-in", 40, 3, pipeline_fingerprint(other), recordings) is None
    result = evaluate_model(other, samples=40, seed=3, recorded="stand-in")
    assert not result.recorded  # scored afresh: the replay alone would have let it through


def test_a_recording_of_another_pipeline_is_refused(recordings):
    _record(recordings, BoxFromPixels())
    with pytest.raises(RecordingError, match="'stand-in' is not what this pipeline answers"):
        evaluate_model(BoxFromPixels(shift=20.0), samples=40, seed=3, recorded="stand-in")


def test_one_sample_may_flip_but_not_two():
    model = BoxFromPixels()
    images = np.random.default_rng(0).random((REPLAY_SAMPLES, 200, 200)).astype(np.float32)
    answers = model.predict_details(images)
    recording = recorded.Recording(
        "r",
        REPLAY_SAMPLES,
        0,
        seconds={"inference": 1.0},
        **{key: getattr(answers, key).astype(np.float32) for key in recorded.FIELDS},
    )
    check_replay(recording, answers)  # float32 rounding is far inside the tolerance
    flipped = Predictions(
        boxes=answers.boxes.copy(), presence=answers.presence, raw_boxes=answers.raw_boxes
    )
    flipped.boxes[0] = np.nan  # a presence a hair from its threshold fell the other way
    check_replay(recording, flipped)
    flipped.boxes[1, 2] += 1.0  # and a near tie chose another candidate: too many
    with pytest.raises(RecordingError, match="2 of the first 16 samples differ"):
        check_replay(recording, flipped)


def test_a_corrupt_or_missing_recording_names_its_file(recordings):
    _record(recordings, BoxFromPixels())
    path = recordings / "stand_in.npz"
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(RecordingError, match=r"stand_in\.npz does not match its checksum"):
        find_recording("stand-in", 40, 3, FINGERPRINT, recordings)
    path.unlink()
    with pytest.raises(RecordingError, match=r"is missing: .*stand_in\.npz"):
        find_recording("stand-in", 40, 3, FINGERPRINT, recordings)
    (recordings / "manifest.json").write_text("{not json")
    with pytest.raises(RecordingError, match=r"manifest\.json is not valid JSON"):
        find_recording("stand-in", 40, 3, FINGERPRINT, recordings)


def test_the_book_s_recordings_are_all_there_intact_and_of_the_shipped_pipelines():
    from spaceship_utils.evaluate import book_pipelines

    pipelines = book_pipelines()
    for name, (model, samples, seed) in pipelines.items():
        recording = find_recording(name, samples, seed, pipeline_fingerprint(model))
        assert recording is not None, f"no recording of {name!r}: run {recorded.RECORD_COMMAND}"
        assert recording.boxes.shape == (samples, 5) and recording.presence.shape == (samples,)
    manifest = read_recorded_manifest()  # nothing recorded that the book does not read
    assert set(manifest) == set(pipelines)
    files = {entry["file"] for entry in manifest.values()}
    assert files == {path.name for path in recorded.RECORDED_DIR.glob("*.npz")}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["detector", "with line-free fits"])
def test_the_book_s_recordings_match_a_fresh_computation(name):
    """The proof behind every chapter that reads a recording: the shipped pipelines answer
    the first 64 official samples as recorded, within the tolerance two CPUs need."""
    from spaceship_utils import load_pretrained

    model = load_pretrained("detector" if name == "detector" else "refined_detector")
    recording = find_recording(name, 10_000, 0, pipeline_fingerprint(model))
    np.random.seed(0)
    images, _ = harness.official_samples(64)
    check_replay(recording, model.predict_details(images))


@pytest.mark.parametrize("command", ["evaluate", "train", "own_answers"])
def test_the_commands_run_as_python_dash_m(command):
    result = subprocess.run(
        [sys.executable, "-m", f"spaceship_utils.{command}", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_the_manifest_is_sorted_json_with_a_checksum_per_file():
    manifest = json.loads((recorded.RECORDED_DIR / "manifest.json").read_text())
    for name, entry in manifest.items():
        assert len(entry["sha256"]) == 64, name
        assert {"machine", "runtime", "date", "seconds"} <= set(entry), name
