import keras
import numpy as np
import pytest

from spaceship_utils.data import generate_batch
from spaceship_utils.detector import (
    GRID,
    OUTPUTS,
    ThresholdChannels,
    build_detector,
    decode_predictions,
    detector_loss,
    encode_targets,
)
from spaceship_utils.geometry import rotated_iou
from spaceship_utils.preprocessing import wrapped_angle_error


@pytest.fixture(scope="module")
def batch():
    images, labels = generate_batch(16, np.random.default_rng(0))
    return images, labels.astype(np.float64)


def perfect_outputs(targets: np.ndarray) -> np.ndarray:
    """Network outputs that agree with the targets exactly."""
    outputs = np.zeros(targets.shape[:-1] + (OUTPUTS,), dtype=np.float32)
    outputs[..., 0] = np.where(targets[..., 1] > 0, 8.0, -8.0)
    outputs[..., 1:7] = targets[..., 2:8]
    outputs[..., 7] = np.where(targets[..., 8] > 0, 8.0, -8.0)
    return outputs


def test_detector_is_small_and_keeps_a_50x50_map():
    model = build_detector()
    assert model.count_params() < 1_000_000
    assert model.output_shape == (None, GRID, GRID, OUTPUTS)


def test_threshold_channels():
    images = np.array([[[0.5, 0.8], [0.95, 0.1]]], dtype=np.float32)
    out = keras.ops.convert_to_numpy(ThresholdChannels()(images))
    np.testing.assert_allclose(out[0, ..., 0], images[0])
    np.testing.assert_allclose(out[0, ..., 1], [[0.0, 0.8], [0.95, 0.0]])


def test_encode_then_decode_recovers_the_boxes(batch):
    _, labels = batch
    boxes, presence = decode_predictions(perfect_outputs(encode_targets(labels)))
    ships = ~np.isnan(labels).any(axis=1)
    np.testing.assert_allclose(
        boxes[ships][:, [0, 1, 3, 4]], labels[ships][:, [0, 1, 3, 4]], atol=1e-4
    )
    assert wrapped_angle_error(boxes[ships, 2], labels[ships, 2]).max() < 1e-5
    np.testing.assert_allclose(rotated_iou(boxes[ships], labels[ships]), 1.0, atol=1e-5)
    assert np.all(presence[ships] > 0.99) and np.all(presence[~ships] < 0.01)


def test_empty_images_have_empty_targets(batch):
    targets = encode_targets(np.full((2, 5), np.nan))
    assert targets.shape == (2, GRID, GRID, 9) and not targets.any()


def test_loss_prefers_the_truth_and_handles_empty_batches(batch):
    _, labels = batch
    targets = encode_targets(labels)
    perfect = float(detector_loss(targets, perfect_outputs(targets)))
    noisy = float(
        detector_loss(
            targets,
            np.random.default_rng(1)
            .normal(size=targets.shape[:-1] + (OUTPUTS,))
            .astype(np.float32),
        )
    )
    assert np.isfinite(perfect) and perfect < 0.1 * noisy
    empty = encode_targets(np.full((2, 5), np.nan))
    assert np.isfinite(float(detector_loss(empty, np.zeros((2, GRID, GRID, OUTPUTS), "float32"))))


def test_decode_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="outputs must have shape"):
        decode_predictions(np.zeros((1, 10, 10, 8)))


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch(batch):
    images, labels = batch
    keras.utils.set_random_seed(0)
    model = build_detector(width=16, dilations=(1, 2))
    model.compile(keras.optimizers.Adam(3e-3), loss=detector_loss)
    targets = encode_targets(labels)
    # Training-mode losses: batch normalisation's running statistics lag far behind after
    # a handful of steps, so inference-mode numbers would not show the progress yet.
    losses = model.fit(images, targets, epochs=15, batch_size=16, verbose=0).history["loss"]
    assert losses[-1] < 0.7 * losses[0]


def test_detector_trains_through_the_common_loop_and_loads_as_a_pipeline(tmp_path):
    from spaceship_utils.pretrained import install_run, load_pretrained
    from spaceship_utils.train import TrainingConfig, train_model

    config = TrainingConfig(
        task="detector", epochs=1, steps_per_epoch=2, batch_size=4, validation_samples=8, seed=0
    )
    history = train_model(config, tmp_path / "run", verbose=0)
    assert np.isfinite(history["loss"]).all() and "val_ap07" in history
    install_run("detector", "detector", tmp_path / "run", tmp_path / "weights")
    model = load_pretrained("detector", tmp_path / "weights")
    boxes = model.predict(generate_batch(3, np.random.default_rng(1))[0])
    assert boxes.shape == (3, 5)
