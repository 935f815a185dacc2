import csv
import json
import os

import h5py
import keras
import numpy as np
import pytest

from spaceship_utils.networks.detector import DESIGNS
from spaceship_utils.networks.seed import (
    CLASSIFIER_PARAMETERS,
    REGRESSOR_PARAMETERS,
    build_classifier,
    build_regressor,
)
from spaceship_utils.train import main
from spaceship_utils.training.batches import GeneratedBatches
from spaceship_utils.training.loop import train_model
from spaceship_utils.training.recipes import TrainingConfig
from spaceship_utils.training.runs import CHECKPOINT, RunDirectoryError, load_checkpoint
from tests.helpers import tiny_config


def test_classifier_matches_the_seed_summary():
    model = build_classifier()
    assert model.count_params() == CLASSIFIER_PARAMETERS == 167_201
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 166_705
    assert model.output_shape == (None, 1)
    kernels = [
        layer.kernel_size for layer in model.layers if isinstance(layer, keras.layers.Conv2D)
    ]
    assert kernels == [(11, 11), (9, 9), (7, 7), (5, 5), (3, 3)]


def test_regressor_matches_the_seed_summary():
    model = build_regressor()
    assert model.count_params() == REGRESSOR_PARAMETERS == 1_643_557
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 1_641_525
    assert model.output_shape == (None, 5)
    assert model.get_layer("pool7").output.shape[1:] == (1, 1, 512)


def test_classifier_outputs_one_probability_per_image():
    images = np.random.default_rng(0).random((3, 200, 200)).astype(np.float32)
    out = build_classifier().predict(images, verbose=0)
    assert out.shape == (3, 1) and out.dtype == np.float32
    assert np.all((out > 0) & (out < 1))


def test_regressor_outputs_five_scaled_box_values_in_the_unit_interval():
    # The targets are boxes divided by the seed's LABEL_SCALE, which puts them in [0, 1]
    # (bar a rare tall ship); the sigmoid head keeps every output strictly inside it.
    images = np.random.default_rng(0).random((2, 200, 200)).astype(np.float32)
    out = build_regressor().predict(images, verbose=0)
    assert out.shape == (2, 5) and out.dtype == np.float32
    assert np.all((out > 0) & (out < 1))


def test_batches_are_reproducible_and_never_repeat():
    batches = GeneratedBatches("classifier", batch_size=4, steps_per_epoch=3, seed=1)
    first = batches[0][0]
    np.testing.assert_array_equal(first, batches[0][0])
    assert not np.array_equal(first, batches[1][0])
    batches.epoch = 1
    assert not np.array_equal(first, batches[0][0])
    assert len(batches) == 3


def test_regressor_batches_always_hold_a_ship():
    images, targets = GeneratedBatches("regressor", 16, 1, seed=0)[0]
    assert images.shape == (16, 200, 200) and targets.shape == (16, 5)
    assert np.all((targets >= 0) & (targets <= 1.05))


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="task"):
        TrainingConfig(task="segmenter")
    with pytest.raises(ValueError, match="batch_size"):
        TrainingConfig(batch_size=0)


def _tiny(task="regressor", **changes):
    return tiny_config(task, recipe=False, **({"epochs": 3, "steps_per_epoch": 3} | changes))


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_same_result_as_an_uninterrupted_one(tmp_path):
    config = _tiny(seed=3)
    whole = train_model(config, tmp_path / "whole", verbose=False)
    assert whole.finished

    stopped = train_model(config, tmp_path / "split", verbose=False, max_steps=4)  # mid-epoch 1
    assert not stopped.finished and stopped.stopped_because == "max_steps=4"
    assert len(stopped.history["loss"]) == 1
    _, _, state = load_checkpoint(tmp_path / "split" / CHECKPOINT)
    assert state["step"] == 4 and state["epoch_steps"] == 1
    resumed = train_model(config, tmp_path / "split", verbose=False)
    assert resumed.finished

    # Same data in the same order, nothing repeated or skipped: the same curve and weights.
    for column in ("loss", "val_loss", "val_ap07", "images"):
        np.testing.assert_allclose(resumed.history[column], whole.history[column], rtol=1e-4)
    whole_net, split_net = build_regressor(), build_regressor()
    whole_net.load_weights(tmp_path / "whole" / "final.weights.h5")
    split_net.load_weights(tmp_path / "split" / "final.weights.h5")
    for a, b in zip(whole_net.get_weights(), split_net.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    with open(tmp_path / "split" / "history.csv") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["0", "1", "2"]


@pytest.mark.slow
def test_a_finished_run_leaves_weights_only_and_its_provenance(tmp_path):
    config = _tiny(epochs=1)
    train_model(config, tmp_path, verbose=False)
    with h5py.File(tmp_path / "final.weights.h5") as shipped:
        assert "optimizer" not in shipped  # weights only
    provenance = json.loads((tmp_path / "provenance.json").read_text())
    assert provenance["training_images"] == 3 * 4
    assert "Keras" in provenance["runtime"] and provenance["backend"] == keras.backend.backend()
    assert provenance["images_per_second"] > 0 and "cores" in provenance["machine"]
    assert provenance["validation_samples"] == 8
    # Running the command of a finished run again keeps its record as it was.
    (tmp_path / "provenance.json").write_text('{"date": "the day it finished"}')
    assert train_model(config, tmp_path, verbose=False).finished
    assert json.loads((tmp_path / "provenance.json").read_text()) == {"date": "the day it finished"}


@pytest.mark.slow
def test_an_epoch_with_a_nan_validation_number_is_never_the_best(tmp_path, monkeypatch):
    from spaceship_utils.training import loop

    real = loop.validation_metrics
    calls = []

    def nan_first(*args, **kwargs):
        metrics = real(*args, **kwargs)
        calls.append(metrics)
        if len(calls) == 1:
            metrics["val_loss"] = float("nan")
        return metrics

    monkeypatch.setattr(loop, "validation_metrics", nan_first)
    train_model(_tiny(epochs=2), tmp_path, verbose=False)
    _, _, state = load_checkpoint(tmp_path / CHECKPOINT)
    assert state["best"] == pytest.approx(calls[1]["val_loss"])


def test_the_machine_is_described_where_cpu_affinity_is_unknown(monkeypatch):
    import os

    from spaceship_utils.core.runtime import describe_machine

    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert describe_machine().endswith(f"{os.cpu_count()} cores")


@pytest.mark.slow
def test_the_wall_clock_budget_stops_cleanly_with_a_checkpoint(tmp_path):
    lines = []
    outcome = train_model(_tiny(), tmp_path, hours=1e-9, log=lines.append)
    assert not outcome.finished and "budget" in outcome.stopped_because
    assert (tmp_path / CHECKPOINT).is_file()
    assert "run the same command to resume" in lines[-1]


def test_a_second_signal_is_no_longer_caught():
    import signal

    from spaceship_utils.training.loop import StopRequest

    before = signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop:
        assert signal.getsignal(signal.SIGTERM) != before  # the first one is caught
        stop._handle(signal.SIGTERM, None)
        assert stop.reason == "SIGTERM"
        assert signal.getsignal(signal.SIGTERM) == before  # the next one acts as usual


@pytest.mark.slow
def test_a_signal_stops_the_run_after_a_checkpoint(tmp_path):
    import os
    import signal

    from spaceship_utils.training.batches import GeneratedBatches

    original = GeneratedBatches.batch_at_step

    def batch_then_sigterm(self, step):
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, step)

    GeneratedBatches.batch_at_step = batch_then_sigterm
    try:
        outcome = train_model(_tiny(), tmp_path, verbose=False)
    finally:
        GeneratedBatches.batch_at_step = original
    assert outcome.stopped_because == "SIGTERM" and not outcome.finished
    _, _, state = load_checkpoint(tmp_path / CHECKPOINT)
    assert 1 <= state["step"] < 9
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored


@pytest.mark.slow
def test_progress_lines_report_images_speed_eta_and_validation(tmp_path):
    lines = []
    train_model(_tiny(), tmp_path, progress_seconds=0, log=lines.append)
    progress = [line for line in lines if line.startswith("regressor: images")]
    assert progress and "img/s" in progress[-1] and "ETA" in progress[-1]
    assert "images 36/36 (100.0%)" in progress[-1] and "val_ap07" in progress[-1]


@pytest.mark.slow
def test_resuming_with_other_settings_is_refused(tmp_path):
    train_model(_tiny(), tmp_path, verbose=False, max_steps=1)
    with pytest.raises(RunDirectoryError, match="different configuration"):
        train_model(_tiny(batch_size=8), tmp_path, verbose=False)


@pytest.mark.slow
def test_a_corrupt_checkpoint_names_the_file(tmp_path):
    train_model(_tiny(), tmp_path, verbose=False, max_steps=1)
    (tmp_path / CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(RunDirectoryError, match=CHECKPOINT):
        train_model(_tiny(), tmp_path, verbose=False)


def test_the_command_line_answers_mistakes_in_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        main(["regressor", "--run-dir", str(tmp_path), "--batch-size", "0"])
    assert stop.value.code == 2
    assert "spaceship-train: error: batch_size" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["regressor", "--hours", "-1"])
    assert "--hours must be > 0" in capsys.readouterr().err
    for arguments, message in [
        (["detector", "--option", "widht=32"], "unknown detector design option"),
        (["detector", "--option", "width=wide"], "must be JSON"),
        (["classifier", "--option", "width=32"], "detector only"),
        (
            ["refiner", "--initial-weights", "gone.weights.h5"],
            f"--initial-weights: no file {os.path.abspath('gone.weights.h5')}",
        ),
    ]:
        with pytest.raises(SystemExit):
            main([*arguments, "--run-dir", str(tmp_path / "never")])
        assert message in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_a_design_option_from_the_command_line_reaches_the_run(tmp_path, monkeypatch):
    import spaceship_utils.train as train

    seen = {}
    monkeypatch.setattr(train, "train_model", lambda config, *a, **k: seen.update(c=config))
    main(["detector", "--design", "fast", "--option", "regression_radius=0", "--run-dir", "x"])
    assert seen["c"].detector_options == {**train.DESIGNS["fast"], "regression_radius": 0}
    main(["detector", "--epochs", "2", "--run-dir", "x"])  # the recipe fills in the rest
    assert seen["c"] == TrainingConfig.recipe("detector", epochs=2)
    assert seen["c"].ema_momentum == 0.999  # the detector's recipe averages its weights
    main(["detector", "--schedule", "cosine", "--ema-momentum", "0", "--run-dir", "x"])
    assert seen["c"].ema_momentum is None and seen["c"].schedule == "cosine"


def test_seed_recipe_is_the_default():
    classifier, regressor = TrainingConfig("classifier"), TrainingConfig("regressor")
    assert classifier.training_images == 480_000 and regressor.training_images == 1_600_000
    assert classifier.batch_size == 8 and classifier.learning_rate == 1e-3
    assert classifier.validation_samples == 2048
    assert TrainingConfig.recipe("classifier") == classifier
    # The regressor's recipe draws other images than the classifier's (chapter 5's SEED).
    assert TrainingConfig.recipe("regressor").seed == 1 and classifier.seed == 0
    detector = TrainingConfig.recipe("detector", seed=3, batch_size=None)
    assert detector.training_images == 1_920_000 and detector.schedule == "hold_cosine"
    assert detector.detector_options == DESIGNS["fast"] and detector.seed == 3
    detector.detector_options["width"] = 8  # a copy: the named design stays as it was
    assert DESIGNS["fast"]["width"] == 64


def test_history_table_spreads_rows_over_the_run_and_keeps_the_last():
    from spaceship_utils.training.runs import history_table

    history = {
        "loss": [1 / (i + 1) for i in range(200)],
        "images": [8000.0 * (i + 1) for i in range(200)],
        "seconds": [1.0] * 200,
    }
    lines = history_table(history, rows=5).splitlines()
    epochs = [int(line.split()[0]) for line in lines[2:]]
    assert epochs[0] == 1 and epochs[-1] == 200 and len(epochs) == 5
    assert lines[0].split() == ["epoch", "images", "loss"]  # timing columns left out
    assert "1,600,000" in lines[-1]
    short = {name: values[:15] for name, values in history.items()}
    every = [int(line.split()[0]) for line in history_table(short, rows=15).splitlines()[2:]]
    assert every == list(range(1, 16))  # a run no longer than `rows`: every epoch
    marked = history_table(history, rows=5, mark=137).splitlines()[2:]
    assert [line.split()[0] for line in marked if "*" in line] == ["137*"]
    with pytest.raises(ValueError, match="mark must be an epoch from 1 to 200"):
        history_table(history, mark=201)


def test_best_epoch_counts_from_one_and_follows_the_direction():
    from spaceship_utils.training.runs import best_epoch

    history = {"val_loss": [0.5, 0.2, 0.3], "val_ap07": [0.1, 0.4, 0.4]}
    assert best_epoch(history, "val_loss", higher_is_better=False) == 2
    assert best_epoch(history, "val_ap07", higher_is_better=True) == 2  # the first of equals
    with pytest.raises(ValueError, match="no 'loss' column"):
        best_epoch(history, "loss", higher_is_better=False)


@pytest.mark.slow
def test_a_run_directory_with_a_tilde_lands_in_the_home_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    train_model(_tiny(epochs=1), "~/runs/tiny", verbose=False)
    assert (tmp_path / "runs" / "tiny" / "final.weights.h5").is_file()


def test_the_hold_then_cosine_schedule_warms_up_holds_the_peak_and_anneals_at_the_end():
    from spaceship_utils.training.loop import build_and_compile
    from spaceship_utils.training.recipes import HoldThenCosine, TrainingConfig

    schedule = HoldThenCosine(1e-3, total_steps=1000)  # warm-up 20 steps, decay from 800
    rates = {step: float(schedule(step)) for step in (0, 10, 20, 500, 800, 900, 1000)}
    assert rates[0] == pytest.approx(1e-4) and rates[10] == pytest.approx(5.5e-4)
    assert rates[20] == rates[500] == rates[800] == pytest.approx(1e-3)
    assert rates[900] == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5)) and rates[1000] == pytest.approx(
        1e-5
    )
    config = TrainingConfig(
        task="detector", epochs=1, steps_per_epoch=10, batch_size=2, schedule="hold_cosine"
    )
    optimizer = build_and_compile(config).optimizer  # at step 0: the warm-up's first rate
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="schedule must be one of"):
        TrainingConfig(task="detector", schedule="one_cycle")


def test_fit_on_the_batches_reads_new_images_every_epoch():
    class Recorded(GeneratedBatches):
        def batch_at_step(self, step):
            self.steps.append(step)
            return super().batch_at_step(step)

    batches = Recorded("classifier", batch_size=2, steps_per_epoch=3, seed=0)
    batches.steps = []
    model = keras.Sequential(
        [keras.Input((200, 200)), keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    model.compile("sgd", "mse")
    model.fit(batches, epochs=2, verbose=0)
    # Epoch 1 reads steps 0-2 (Keras may read one early, for the shapes), epoch 2 steps 3-5.
    assert set(batches.steps) == set(range(6))
    assert sorted(batches.steps[-3:]) == [3, 4, 5]


def test_the_first_step_with_empty_images_is_found_in_order():
    from spaceship_utils.training.batches import first_step_with_empty_images

    batches = GeneratedBatches("classifier", batch_size=8, steps_per_epoch=50, seed=0)
    step = first_step_with_empty_images(batches, 2)
    assert (batches.batch_at_step(step)[1] == 0).sum() >= 2
    assert all((batches.batch_at_step(s)[1] == 0).sum() < 2 for s in range(step))
    with pytest.raises(ValueError, match="classifier"):
        first_step_with_empty_images(GeneratedBatches("regressor", 8, 5, seed=0), 2)
    # Short epochs (quick mode) do not limit the search: batches are numbered across epochs.
    tiny = GeneratedBatches("classifier", batch_size=2, steps_per_epoch=1, seed=0)
    assert (tiny.batch_at_step(first_step_with_empty_images(tiny, 2))[1] == 0).all()


def test_a_negative_seed_and_an_option_without_a_value_are_refused(capsys):
    with pytest.raises(ValueError, match="seed"):
        TrainingConfig(seed=-1)
    with pytest.raises(SystemExit):
        main(["detector", "--option", "regression_radius"])
    assert "write KEY=VALUE" in capsys.readouterr().err


def test_the_kept_epoch_follows_each_tasks_monitor():
    from spaceship_utils.training.recipes import kept_epoch

    history = {"val_loss": [0.5, 0.2, 0.3], "val_ap07": [0.1, 0.2, 0.4]}
    assert kept_epoch(history, "regressor") == 2  # the lowest validation loss
    assert kept_epoch(history, "detector") == 3  # the highest validation AP@0.7
    with pytest.raises(ValueError, match="task must be one of"):
        kept_epoch(history, "segmenter")


@pytest.mark.slow
def test_a_weight_average_is_validated_kept_and_resumed_exactly(tmp_path):
    config = _tiny(seed=4, ema_momentum=0.5)
    whole = train_model(config, tmp_path / "whole", verbose=False)
    assert {"raw_val_loss", "raw_val_ap07"} <= set(whole.history)
    assert whole.history["val_loss"] != whole.history["raw_val_loss"]  # two sets of weights
    # The kept weights are the average: their validation loss is the history's val_loss.
    from spaceship_utils.training.batches import validation_data
    from spaceship_utils.training.tasks import build_network, validation_metrics

    kept = build_network("regressor")
    kept.load_weights(tmp_path / "whole" / "best.weights.h5")
    best = min(whole.history["val_loss"])
    again = validation_metrics(kept, "regressor", *validation_data("regressor", 8, 4))
    assert again["val_loss"] == pytest.approx(best, rel=1e-4)

    train_model(config, tmp_path / "split", verbose=False, max_steps=4)
    resumed = train_model(config, tmp_path / "split", verbose=False)
    for column in ("val_loss", "raw_val_loss"):
        np.testing.assert_allclose(resumed.history[column], whole.history[column], rtol=1e-4)
    with pytest.raises(ValueError, match="ema_momentum"):
        _tiny(ema_momentum=1.0)


@pytest.mark.slow
def test_a_run_started_before_a_setting_existed_still_resumes(tmp_path):
    config = _tiny(epochs=2)
    train_model(config, tmp_path, verbose=False, max_steps=2)
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["ema_momentum"]  # as written by an older version of this code
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert train_model(config, tmp_path, verbose=False).finished
    with pytest.raises(RunDirectoryError, match="different configuration"):
        train_model(_tiny(epochs=2, ema_momentum=0.9), tmp_path, verbose=False)


@pytest.mark.slow
def test_a_second_cycle_starts_from_the_first_runs_weights_and_records_them(tmp_path):
    from spaceship_utils.training.runs import file_sha256

    first = train_model(_tiny(epochs=1), tmp_path / "first", verbose=False)
    assert first.finished
    start = tmp_path / "first" / "final.weights.h5"
    second = _tiny(epochs=1, seed=1, learning_rate=1e-9, initial_weights=start)
    train_model(second, tmp_path / "second", verbose=False)
    # At a vanishing learning rate the second cycle's trainable weights stay where the first
    # cycle left them (batch-norm statistics still follow the new batches).
    before, after = build_regressor(), build_regressor()
    before.load_weights(start)
    after.load_weights(tmp_path / "second" / "final.weights.h5")
    for a, b in zip(before.trainable_weights, after.trainable_weights, strict=True):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), atol=1e-6
        )
    provenance = json.loads((tmp_path / "second" / "provenance.json").read_text())
    assert provenance["initial_weights"] == {"file": start.name, "sha256": file_sha256(start)}
    assert "initial_weights" not in json.loads((tmp_path / "first" / "provenance.json").read_text())


@pytest.mark.slow
def test_a_second_cycle_resumes_from_its_checkpoint_without_its_start_file(tmp_path):
    from spaceship_utils.training.runs import file_sha256

    train_model(_tiny(epochs=1), tmp_path / "first", verbose=False)
    start = tmp_path / "first" / "final.weights.h5"
    digest = file_sha256(start)
    config = _tiny(epochs=2, seed=1, initial_weights=start)
    whole = train_model(config, tmp_path / "whole", verbose=False)
    train_model(config, tmp_path / "split", verbose=False, max_steps=4)
    start.rename(tmp_path / "moved.weights.h5")  # the first run's folder is gone
    resumed = train_model(config, tmp_path / "split", verbose=False)
    assert resumed.finished
    np.testing.assert_allclose(resumed.history["val_loss"], whole.history["val_loss"], rtol=1e-4)
    provenance = json.loads((tmp_path / "split" / "provenance.json").read_text())
    assert provenance["initial_weights"]["sha256"] == digest  # the bytes it started from
    with pytest.raises(RunDirectoryError, match="differs in initial_weights"):
        train_model(_tiny(epochs=2, seed=1), tmp_path / "split", verbose=False)


@pytest.mark.slow
def test_missing_or_unloadable_initial_weights_name_the_file(tmp_path):
    missing = _tiny(initial_weights=tmp_path / "nowhere.weights.h5")
    with pytest.raises(RunDirectoryError, match="initial weights: no file .*nowhere.weights.h5"):
        train_model(missing, tmp_path / "run", verbose=False)
    classifier = tmp_path / "classifier"
    train_model(_tiny("classifier", epochs=1), classifier, verbose=False)
    wrong = _tiny(
        initial_weights=classifier / "final.weights.h5"
    )  # a classifier's, not a regressor's
    with pytest.raises(RunDirectoryError, match="initial weights .*final.weights.h5 could not"):
        train_model(wrong, tmp_path / "regressor", verbose=False)
    assert not (tmp_path / "regressor" / "config.json").exists()  # nothing half-started


def test_a_refiner_started_from_trained_weights_skips_the_clean_curriculum():
    batches = GeneratedBatches("refiner", 32, 1000, seed=0, clean_windows=0)
    windows, _ = batches.batch_at_step(0)
    assert np.mean(windows[..., 0] == 0) < 0.2  # noisy from the first step
