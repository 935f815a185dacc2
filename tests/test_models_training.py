import csv
import json

import h5py
import keras
import numpy as np
import pytest

from spaceship_utils.models import (
    CLASSIFIER_PARAMETERS,
    REGRESSOR_PARAMETERS,
    build_classifier,
    build_regressor,
)
from spaceship_utils.train import GeneratedBatches, TrainingConfig, read_history, train_model


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


def test_outputs_are_probabilities():
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


class StopAtEpoch(keras.callbacks.Callback):
    """Simulate an interruption (a killed session) at the start of a given epoch."""

    def __init__(self, epoch):
        super().__init__()
        self.stop_epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.stop_epoch:
            raise KeyboardInterrupt("simulated interruption")


def test_training_checkpoints_and_resumes_after_an_interruption(tmp_path):
    config = TrainingConfig(
        task="regressor", epochs=3, steps_per_epoch=2, batch_size=4, validation_samples=8, seed=3
    )
    with pytest.raises(KeyboardInterrupt):
        train_model(config, tmp_path, verbose=0, extra_callbacks=[StopAtEpoch(2)])
    assert (tmp_path / "best.weights.h5").is_file()
    assert len(read_history(tmp_path / "history.csv")["loss"]) == 2

    # Pretend epoch 1 was unbeatable: after the resume, no later epoch may overwrite its
    # checkpoint (Keras would otherwise compare against infinity and overwrite at once).
    logged = (tmp_path / "history.csv").read_text().splitlines()
    columns = logged[0].split(",")
    row = logged[2].split(",")
    row[columns.index("val_loss")] = "0.0"
    logged[2] = ",".join(row)
    (tmp_path / "history.csv").write_text("\n".join(logged) + "\n")
    best_before = (tmp_path / "best.weights.h5").stat().st_mtime_ns
    seen_epochs = []
    recorder = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen_epochs.append(epoch)
    )
    history = train_model(config, tmp_path, verbose=0, extra_callbacks=[recorder])
    assert seen_epochs == [2]  # epochs 0 and 1 are not trained again
    assert (tmp_path / "best.weights.h5").stat().st_mtime_ns == best_before
    assert len(history["loss"]) == 3 and "val_ap07" in history
    with open(tmp_path / "history.csv") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["0", "1", "2"]
    assert (tmp_path / "final.weights.h5").is_file()
    with h5py.File(tmp_path / "final.weights.h5") as shipped:
        assert "optimizer" not in shipped  # weights only
    provenance = json.loads((tmp_path / "provenance.json").read_text())
    assert provenance["training_images"] == 3 * 2 * 4 and "Keras" in provenance["runtime"]
    assert not (tmp_path / "backup").exists() or not any((tmp_path / "backup").iterdir())
