import json
import time

import numpy as np
import pytest

from spaceship_utils.data.generator import generate_batch
from spaceship_utils.detection.restarts import RESTART_SHIFTS, RESTART_TURNS
from spaceship_utils.networks.verifier import verification_targets
from spaceship_utils.networks.windows import window_views
from spaceship_utils.training import hard_examples
from spaceship_utils.training.hard_examples import (
    OwnAnswersError,
    own_answer_batch,
    own_answer_windows,
    read_own_answers,
    write_own_answers,
)


@pytest.fixture(scope="module")
def refined_detector():
    from spaceship_utils.pretrained import load_pretrained

    return load_pretrained("refined_detector")


@pytest.mark.slow
def test_own_answers_are_the_boxes_the_verifier_is_asked_about(refined_detector):
    images, labels = generate_batch(24, np.random.default_rng(31))
    model = refined_detector.with_settings(restart_below=0.9999)  # more doubted boxes to see
    windows, targets = own_answer_windows(model, images, labels)
    boxes_by_pass, detector_presence = model.boxes_by_pass(images, model.passes)
    boxed = model.vote.presence(images, detector_presence) >= model.presence_threshold
    refined = boxes_by_pass[-1][boxed]
    doubted = model.restarts.verifier_scores(images[boxed], refined) < 0.9999
    assert doubted.any()
    starts = len(RESTART_TURNS) + len(RESTART_SHIFTS) + 1  # and the second guess
    assert windows.shape == (boxed.sum() + starts * doubted.sum(), 64, 64, 2)
    assert targets.shape == (len(windows), 1) and set(np.unique(targets)) <= {0.0, 1.0}
    # The first windows judge the refined boxes as the pipeline would, in image order.
    np.testing.assert_array_equal(
        targets[: boxed.sum()], verification_targets(refined, labels[boxed])
    )


@pytest.mark.slow
def test_own_answers_are_written_in_chunks_that_resume(refined_detector, tmp_path):
    lines = []
    assert write_own_answers(refined_detector, tmp_path, chunks=2, log=lines.append, chunk_images=8)
    assert len(lines) == 2 and sorted(p.name for p in tmp_path.iterdir()) == [
        "chunk_0000.npz",
        "chunk_0001.npz",
        "collection.json",
    ]
    first = (tmp_path / "chunk_0000.npz").stat().st_mtime_ns
    past = time.monotonic() - 1.0
    assert not write_own_answers(
        refined_detector, tmp_path, 3, log=lines.append, chunk_images=8, deadline=past
    )
    assert len(lines) == 2  # past its deadline: no new chunk
    write_own_answers(refined_detector, tmp_path, chunks=3, log=lines.append, chunk_images=8)
    assert len(lines) == 3  # only the missing chunk was collected
    assert (tmp_path / "chunk_0000.npz").stat().st_mtime_ns == first
    # Another pipeline, setting or seed must not add its chunks to these.
    other = refined_detector.with_settings(restart_below=0.5)
    with pytest.raises(OwnAnswersError, match=r"differs in settings\.restart_below\)"):
        write_own_answers(other, tmp_path, chunks=4, chunk_images=8)
    with pytest.raises(OwnAnswersError, match=r"differs in seed\)"):
        write_own_answers(refined_detector, tmp_path, chunks=4, seed=1, chunk_images=8)
    assert len(list(tmp_path.glob("chunk_*"))) == 3
    (windows, targets), (held_out, held_targets) = read_own_answers(tmp_path, 1)
    assert windows.dtype == np.float16 and targets.dtype == np.float32
    assert held_out.dtype == np.float32 and len(held_out) == len(held_targets) == 1
    images, labels = generate_batch(8, np.random.default_rng([hard_examples.OWN_ANSWERS_SEED, 1]))
    second, _ = own_answer_windows(refined_detector, images, labels)
    with np.load(tmp_path / "chunk_0001.npz") as chunk:
        np.testing.assert_array_equal(chunk["windows"], second.astype(np.float16))


def _write_chunks(directory, sizes):
    for index, size in enumerate(sizes):
        windows = np.full((size, 64, 64, 2), index, np.float16)
        targets = np.full((size, 1), index % 2, np.uint8)
        np.savez(directory / f"chunk_{index:04d}.npz", windows=windows, targets=targets)


def test_the_first_chunks_are_kept_for_validation(tmp_path):
    _write_chunks(tmp_path, [3, 4, 5, 6])
    (windows, targets), (held_out, held_targets) = read_own_answers(tmp_path, 5)
    # Chunks 0 and 1 hold the 5 validation windows; chunks 2 and 3 train.
    assert held_out[:, 0, 0, 0].tolist() == [0, 0, 0, 1, 1]
    assert held_targets[:, 0].tolist() == [0, 0, 0, 1, 1]
    assert sorted(set(windows[:, 0, 0, 0].tolist())) == [2, 3] and len(windows) == 11
    assert len(targets) == 11
    with pytest.raises(OwnAnswersError, match="too few own answers.*collect more chunks"):
        read_own_answers(tmp_path, 13)


def test_reading_own_answers_names_what_is_missing_or_broken(tmp_path):
    with pytest.raises(OwnAnswersError, match="no own answers in .*python -m spaceship_utils"):
        read_own_answers(tmp_path, 1)
    (tmp_path / "chunk_0000.npz").write_bytes(b"not a zip file")
    with pytest.raises(OwnAnswersError, match="chunk_0000.npz cannot be read.*delete it"):
        read_own_answers(tmp_path, 1)
    np.savez(tmp_path / "chunk_0000.npz", windows=np.zeros((3, 8, 8, 2)), targets=np.zeros((3, 1)))
    with pytest.raises(OwnAnswersError, match="not a chunk of own answers"):
        read_own_answers(tmp_path, 1)


def test_a_batch_of_own_answers_shows_each_window_in_one_of_its_views():
    rng = np.random.default_rng(0)
    windows = rng.uniform(size=(5, 64, 64, 2)).astype(np.float16)
    targets = np.arange(5, dtype=np.float32)[:, None]
    batch, picked = own_answer_batch(windows, targets, 40, np.random.default_rng(3))
    assert batch.shape == (40, 64, 64, 2) and batch.dtype == np.float32
    views = window_views(windows).reshape(4, 5, 64, 64, 2)
    seen = set()
    for window, target in zip(batch, picked[:, 0].astype(int), strict=True):
        matches = [v for v in range(4) if np.array_equal(views[v, target], window)]
        assert matches  # the window of its own target, in some view
        seen.add(matches[0])
    assert seen == {0, 1, 2, 3}
    again, _ = own_answer_batch(windows, targets, 40, np.random.default_rng(3))
    np.testing.assert_array_equal(batch, again)  # a resumed run redraws the same batch


def test_verifier_batches_take_half_their_windows_from_own_answers():
    from spaceship_utils.training.batches import GeneratedBatches
    from spaceship_utils.training.recipes import TrainingConfig

    windows = np.random.default_rng(1).uniform(size=(6, 64, 64, 2)).astype(np.float16)
    targets = np.ones((6, 1), np.float32)
    batches = GeneratedBatches("verifier", 8, 10, seed=2, own_answers=(windows, targets))
    inputs, answers = batches.batch_at_step(3)
    assert inputs.shape == (8, 64, 64, 2) and answers.shape == (8, 1)
    views = window_views(windows.astype(np.float32))
    own = [any(np.array_equal(view, window) for view in views) for window in inputs]
    assert own == [True] * 4 + [False] * 4
    np.testing.assert_array_equal(batches.batch_at_step(3)[0], inputs)
    with pytest.raises(ValueError, match="verifier only, not the refiner"):
        GeneratedBatches("refiner", 8, 10, seed=2, own_answers=(windows, targets))
    with pytest.raises(ValueError, match="verifier only, not the detector"):
        TrainingConfig.recipe("detector", own_answers="somewhere")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_a_verifier_run_trains_on_own_answers_and_validates_on_held_out_ones(tmp_path):
    from spaceship_utils.networks.verifier import build_verifier
    from spaceship_utils.training.loop import train_model
    from spaceship_utils.training.recipes import TrainingConfig

    (tmp_path / "answers").mkdir()
    _write_chunks(tmp_path / "answers", [6, 6, 6])
    start = build_verifier()
    start.save_weights(tmp_path / "start.weights.h5")
    small = {"epochs": 2, "steps_per_epoch": 1, "batch_size": 4, "validation_samples": 6}
    config = TrainingConfig.recipe(
        "verifier",
        initial_weights=tmp_path / "start.weights.h5",
        own_answers=tmp_path / "answers",
        **small,
    )
    first = train_model(config, tmp_path / "run", verbose=False, max_steps=1)
    assert not first.finished
    outcome = train_model(config, tmp_path / "run", verbose=False)  # resumes
    assert outcome.finished and len(outcome.history["val_accuracy"]) == 2
    # Validated on chunk 0 alone: six windows of zeros whose boxes all miss.
    verifier = build_verifier()
    verifier.load_weights(tmp_path / "run" / "final.weights.h5")
    scores = verifier.predict(np.zeros((6, 64, 64, 2), np.float32), verbose=0)
    expected = np.mean(scores < 0.5)
    assert outcome.history["val_accuracy"][-1] == pytest.approx(expected)
    provenance = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert provenance["own_answers"] == {
        "folder": "answers",
        "chunks": 3,
        "windows": 18,
        "scoring_share": round(6 / 18, 4),
    }


@pytest.mark.slow
def test_chunks_without_a_record_of_what_collected_them_are_not_added_to(
    refined_detector, tmp_path
):
    _write_chunks(tmp_path, [3])
    with pytest.raises(OwnAnswersError, match="no collection.json"):
        write_own_answers(refined_detector, tmp_path, chunks=2, chunk_images=8)


@pytest.mark.slow
def test_the_command_says_why_it_will_not_add_to_a_folder(tmp_path, capsys):
    from spaceship_utils import own_answers

    _write_chunks(tmp_path, [3])
    with pytest.raises(SystemExit) as stopped:
        own_answers.main([str(tmp_path), "--chunks", "2"])
    assert stopped.value.code == 2 and "no collection.json" in capsys.readouterr().err
