import json

import numpy as np
import pytest

import spaceship_utils
from spaceship_utils.detection.pipelines import BaselinePipeline
from spaceship_utils.networks.seed import build_classifier, build_regressor
from spaceship_utils.pretrained import (
    WEIGHTS_DIR,
    WeightsError,
    install_run,
    load_pretrained,
    read_manifest,
    shipped_history,
)
from tests.helpers import tiny_config


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    """A private weights folder with freshly initialised (untrained) baseline weights."""
    folder = tmp_path_factory.mktemp("weights")
    for role, build in (("classifier", build_classifier), ("regressor", build_regressor)):
        run_dir = tmp_path_factory.mktemp(role)
        build().save_weights(run_dir / "final.weights.h5")
        (run_dir / "provenance.json").write_text(json.dumps({"note": "untrained, for tests"}))
        install_run("baseline", role, run_dir, folder)
    return folder


@pytest.mark.slow
def test_the_shipped_baseline_loads_and_predicts_the_public_contract():
    model = spaceship_utils.load_pretrained("baseline")
    np.random.seed(0)
    images = np.stack([spaceship_utils.data.generator.make_data()[0] for _ in range(6)])
    boxes = model.predict(images)
    assert boxes.shape == (6, 5) and boxes.dtype == np.float64
    rows_nan = np.isnan(boxes)
    assert np.all(rows_nan.all(axis=1) | ~rows_nan.any(axis=1))  # whole rows only
    assert model.predict(images[0]).shape == (1, 5)  # a single image works too


def test_shipped_manifest_lists_both_baseline_files_with_provenance():
    files = read_manifest()["baseline"]["files"]
    assert set(files) == {"classifier", "regressor"}
    for entry in files.values():
        assert (WEIGHTS_DIR / entry["file"]).is_file()
        assert len(entry["sha256"]) == 64 and entry["provenance"]


@pytest.mark.slow
def test_pipeline_applies_the_presence_rule(weights_dir):
    model = load_pretrained("baseline", weights_dir)
    images = np.random.default_rng(0).random((3, 200, 200)) * 0.8
    details = model.predict_details(images)
    expected_nan = details.presence < model.presence_threshold
    np.testing.assert_array_equal(np.isnan(details.boxes).all(axis=1), expected_nan)
    assert np.isfinite(details.raw_boxes).all()


@pytest.mark.slow
def test_missing_file_names_the_file_and_the_fix(weights_dir, tmp_path):
    broken = tmp_path / "weights"
    broken.mkdir()
    (broken / "manifest.json").write_text((weights_dir / "manifest.json").read_text())
    with pytest.raises(WeightsError, match=r"baseline_classifier\.weights\.h5 is missing.*retrain"):
        load_pretrained("baseline", broken)


@pytest.mark.slow
def test_corrupt_file_is_refused(weights_dir, tmp_path):
    corrupt = tmp_path / "weights"
    corrupt.mkdir()
    for path in weights_dir.iterdir():
        (corrupt / path.name).write_bytes(path.read_bytes())
    target = corrupt / "baseline_regressor.weights.h5"
    data = bytearray(target.read_bytes())
    data[-100] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"baseline_regressor\.weights\.h5 is corrupt"):
        load_pretrained("baseline", corrupt)


@pytest.mark.slow
def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown pretrained model"):
        load_pretrained("resnet")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("images", "message"),
    [(np.zeros((2, 100, 100)), "shape"), (np.full((1, 200, 200), np.inf), "NaN or infinite")],
)
def test_predict_rejects_bad_images(weights_dir, images, message):
    model = load_pretrained("baseline", weights_dir)
    with pytest.raises(ValueError, match=message):
        model.predict(images)


def test_presence_threshold_is_validated():
    with pytest.raises(ValueError, match="presence_threshold"):
        BaselinePipeline(None, None, presence_threshold=1.5)


def test_installing_an_unfinished_run_is_refused(tmp_path):
    with pytest.raises(WeightsError, match="final.weights.h5 is missing"):
        install_run("baseline", "classifier", tmp_path, tmp_path / "weights")


def test_installing_a_run_as_the_wrong_network_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"task": "regressor"}))
    with pytest.raises(ValueError, match="trained a regressor, not the classifier"):
        install_run("baseline", "classifier", tmp_path, tmp_path / "weights")
    with pytest.raises(ValueError, match="'baseline' has no 'detector' network"):
        install_run("baseline", "detector", tmp_path, tmp_path / "weights")


def test_a_manifest_that_is_not_json_is_named(tmp_path):
    (tmp_path / "manifest.json").write_text("{ not json")
    with pytest.raises(WeightsError, match="manifest.json is not valid JSON"):
        read_manifest(tmp_path / "manifest.json")


@pytest.mark.slow
def test_detector_without_shipped_weights_says_how_to_train_it(weights_dir):
    with pytest.raises(WeightsError, match=r"no detector weights for 'detector' are shipped yet"):
        load_pretrained("detector", weights_dir)


@pytest.mark.slow
def test_a_calibrated_presence_threshold_travels_with_the_weights(tmp_path):
    from spaceship_utils.networks.detector import build_detector

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    build_detector(width=16, dilations=(1,)).save_weights(run_dir / "final.weights.h5")
    provenance = {"detector_options": {"width": 16, "dilations": [1]}}
    (run_dir / "provenance.json").write_text(json.dumps(provenance))
    install_run("detector", "detector", run_dir, tmp_path / "weights", presence_threshold=0.3)
    model = load_pretrained("detector", tmp_path / "weights")
    assert model.presence_threshold == 0.3 and model.network.count_params() < 20_000
    with pytest.raises(ValueError, match="presence_threshold"):
        install_run("detector", "detector", run_dir, tmp_path / "weights", presence_threshold=2)


def test_calibration_picks_the_threshold_that_scores_best():
    from spaceship_utils.detection.pipelines import Predictions, calibrated_presence_threshold

    box = [100.0, 100.0, 1.0, 20.0, 30.0]
    labels = np.array([box, box, [np.nan] * 5, [np.nan] * 5])

    class Fixed:
        def predict_details(self, images):
            raw = np.array([box] * 4)
            return Predictions(raw, np.array([0.9, 0.4, 0.3, 0.2]), raw)

    threshold, score = calibrated_presence_threshold(Fixed(), np.zeros((4, 200, 200)), labels)
    assert 0.3 < threshold <= 0.4 and score == 1.0


def test_the_shipped_run_and_its_kept_epoch_are_described():
    from spaceship_utils.pretrained import describe_shipped_run
    from spaceship_utils.training.recipes import TrainingConfig

    run, speed, machine, runtime, kept = describe_shipped_run("detector", "detector").splitlines()
    recipe = TrainingConfig.recipe("detector")  # the shipped detector is the recipe's run
    assert run.startswith(f"detector: {recipe.training_images:,} training images (batch 32) in ")
    assert "validation included" in speed and "training images/s in a median epoch" in speed
    assert machine.startswith("machine: ") and runtime.startswith("runtime: Python ")
    history = shipped_history("detector", "detector")
    best = int(np.argmax(history["val_ap07"]))
    assert kept == (
        f"shipped weights: epoch {best + 1} of {len(history['val_ap07'])}, the best val_ap07 "
        f"({history['val_ap07'][best]:.4f})"
    )


def test_the_shipped_verifier_says_its_dense_layer_was_factored():
    from spaceship_utils.pretrained import describe_shipped_run, read_manifest

    lines = describe_shipped_run("refined_detector", "verifier").splitlines()
    entry = read_manifest()["refined_detector"]["files"]["verifier"]["provenance"]
    rank = entry["factored"]["rank"]
    assert lines[-2] == f"then its dense layer factored to rank {rank} (recipe step verifier-lean):"
    assert lines[-1].endswith(f"of its variance kept, on {entry['factored']['windows']:,} windows")
    assert lines[-3].startswith("shipped weights: epoch ")


def test_ablation_records_come_reference_first_and_a_missing_reference_is_named(tmp_path):
    from spaceship_utils.pretrained import REFERENCE_ABLATION, shipped_ablations

    for name in ("radius0", REFERENCE_ABLATION, "constant_lr"):
        (tmp_path / name).mkdir()
    assert list(shipped_ablations(tmp_path)) == [REFERENCE_ABLATION, "constant_lr", "radius0"]
    with pytest.raises(WeightsError, match=f"{tmp_path / 'missing' / REFERENCE_ABLATION}"):
        shipped_ablations(tmp_path / "missing")


@pytest.mark.slow
def test_your_own_detector_run_loads_as_a_pipeline(tmp_path):
    from spaceship_utils.pretrained import WeightsError, load_detector_run
    from spaceship_utils.training.loop import train_model

    design = {"width": 8, "dilations": [1], "box_loss": "l1+riou"}
    config = tiny_config("detector", detector_options=design)
    stopped = train_model(config, tmp_path / "run", verbose=False, max_steps=1)
    with pytest.raises(WeightsError, match="has not finished an epoch"):
        load_detector_run(tmp_path / "run")
    train_model(config, tmp_path / "run", verbose=False)
    model = load_detector_run(tmp_path / "run", presence_threshold=0.3)
    assert not stopped.finished and model.presence_threshold == 0.3
    images = np.zeros((2, 200, 200), dtype=np.float32)
    assert model.predict(images).shape == (2, 5)
    (tmp_path / "regressor").mkdir()
    (tmp_path / "regressor" / "config.json").write_text(json.dumps({"task": "regressor"}))
    with pytest.raises(ValueError, match="not a detector run"):
        load_detector_run(tmp_path / "regressor")


def test_an_earlier_run_record_describes_the_run_its_history_holds(tmp_path):
    from spaceship_utils.pretrained import describe_earlier_run, earlier_run_history

    history = earlier_run_history("first_detector")
    best = int(np.argmax(history["val_ap07"]))
    lines = describe_earlier_run("first_detector").splitlines()
    assert lines[0].startswith("first_detector (detector): 480,000 training images (batch 32)")
    assert lines[-1] == (
        f"weights kept: epoch {best + 1} of {len(history['val_ap07'])}, the best val_ap07 "
        f"({history['val_ap07'][best]:.4f})"
    )
    with pytest.raises(WeightsError, match="earlier_run_that_never_was is missing"):
        earlier_run_history("earlier_run_that_never_was", tmp_path)


def test_a_run_started_from_earlier_weights_says_which(tmp_path):
    from spaceship_utils.pretrained import describe_earlier_run
    from spaceship_utils.training.runs import append_history_row

    run = tmp_path / "second_cycle"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"task": "refiner"}))
    record = {
        "training_images": 64,
        "batch_size": 32,
        "training_seconds": 36.0,
        "images_per_second": 900.0,
        "machine": "a laptop, 2 cores",
        "runtime": "Python",
        "date": "2026-11-27",
        "initial_weights": {"file": "first.weights.h5", "sha256": "ab" * 32},
    }
    (run / "provenance.json").write_text(json.dumps(record))
    append_history_row(run / "history.csv", {"epoch": 0, "val_ap07": 0.5, "images": 64})
    second_line = describe_earlier_run("second_cycle", tmp_path).splitlines()[1]
    assert second_line == "started from first.weights.h5 (SHA-256 abababababab...)"
    record["initial_weights"]["recipe_step"] = "refiner"  # a run of the chain names its step
    (run / "provenance.json").write_text(json.dumps(record))
    second_line = describe_earlier_run("second_cycle", tmp_path).splitlines()[1]
    assert (
        second_line == "started from the weights of recipe step refiner (SHA-256 abababababab...)"
    )


def test_each_network_of_the_shipped_pipeline_names_its_recipe_step():
    from spaceship_utils.chain import PIPELINE_STEPS, RECIPE, Factor
    from spaceship_utils.pretrained import read_manifest

    steps = {step.name: step for step in RECIPE}
    for role, entry in read_manifest()["refined_detector"]["files"].items():
        provenance = entry["provenance"]
        assert provenance["recipe_step"] == PIPELINE_STEPS[role]
        step = steps[PIPELINE_STEPS[role]]
        if isinstance(step, Factor):  # factored from a run, which started from another step
            assert provenance["factored"]["from_step"] == step.starts_from
            step = steps[step.starts_from]
        assert provenance.get("initial_weights", {}).get("recipe_step") == step.starts_from


def test_a_line_vote_travels_in_the_manifest_and_a_broken_one_is_named(tmp_path):
    import shutil

    from spaceship_utils.detection.line_vote import LineVote
    from spaceship_utils.pretrained import MANIFEST, ship_line_vote, shipped_line_vote

    assert shipped_line_vote({}) is None
    vote = LineVote((0.5, 1.5, 2.5), -0.25, (0.3, 0.8))
    manifest = tmp_path / "manifest.json"
    with pytest.raises(WeightsError, match="missing"):
        ship_line_vote(vote, tmp_path)
    manifest.write_text(json.dumps({"baseline": {"files": {}}}))
    with pytest.raises(WeightsError, match="lists no refined detector"):
        ship_line_vote(vote, tmp_path)
    shutil.copyfile(MANIFEST, manifest)
    ship_line_vote(vote, tmp_path)
    settings = read_manifest(manifest)["refined_detector"]
    assert shipped_line_vote(settings, manifest) == vote
    with pytest.raises(TypeError, match="must be a LineVote"):
        ship_line_vote(vote.as_dict(), tmp_path)
    del settings["line_vote"]["intercept"]
    with pytest.raises(WeightsError, match=rf"line vote in {manifest} is broken.*intercept"):
        shipped_line_vote(settings, manifest)


def test_the_outline_fits_setting_round_trips_through_the_manifest(tmp_path):
    import shutil

    from spaceship_utils.pretrained import MANIFEST, ship_outline_fits

    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"baseline": {"files": {}}}))
    with pytest.raises(WeightsError, match="lists no refined detector"):
        ship_outline_fits(0.3, True, tmp_path)
    shutil.copyfile(MANIFEST, manifest)
    ship_outline_fits(0.25, False, tmp_path)
    settings = read_manifest(manifest)["refined_detector"]
    assert (settings["outline_weight"], settings["line_free_fits"]) == (0.25, False)
    with pytest.raises(TypeError, match="line_free must be True or False"):
        ship_outline_fits(0.3, 1, tmp_path)
    with pytest.raises(ValueError, match="outline_weight must be a finite number >= 0"):
        ship_outline_fits(-0.3, True, tmp_path)
    shipped = read_manifest(MANIFEST)["refined_detector"]  # what load_pretrained reads
    assert isinstance(shipped["line_free_fits"], bool) and shipped["outline_weight"] > 0
