import keras
import numpy as np
import pytest

from spaceship_utils.data import generate_batch
from spaceship_utils.detector import (
    DESIGNS,
    GRID,
    OUTPUT_CHANNELS,
    ThresholdChannels,
    build_detector,
    decode_predictions,
    detector_loss,
    encode_targets,
    memorise_batch,
    outputs_from_targets,
    split_design,
)
from spaceship_utils.geometry import rotated_iou
from spaceship_utils.preprocessing import wrapped_angle_error


@pytest.fixture(scope="module")
def batch():
    images, labels = generate_batch(16, np.random.default_rng(0))
    return images, labels.astype(np.float64)


def test_the_default_detector_is_the_small_fast_design():
    model = build_detector()
    assert model.count_params() < 200_000
    assert model.output_shape == (None, GRID, GRID, OUTPUT_CHANNELS) == (None, 25, 25, 8)
    assert build_detector(**DESIGNS["fast"]).count_params() == model.count_params()
    assert build_detector(**DESIGNS["stride4"]).output_shape == (None, 50, 50, 8)


def test_threshold_channels():
    images = np.array([[[0.5, 0.8], [0.95, 0.1]]], dtype=np.float32)
    out = keras.ops.convert_to_numpy(ThresholdChannels()(images))
    np.testing.assert_allclose(out[0, ..., 0], images[0])
    np.testing.assert_allclose(out[0, ..., 1], [[0.0, 0.8], [0.95, 0.0]])


def test_encode_then_decode_recovers_the_boxes(batch):
    _, labels = batch
    boxes, presence = decode_predictions(outputs_from_targets(encode_targets(labels)))
    ships = ~np.isnan(labels).any(axis=1)
    np.testing.assert_allclose(
        boxes[ships][:, [0, 1, 3, 4]], labels[ships][:, [0, 1, 3, 4]], atol=1e-4
    )
    assert wrapped_angle_error(boxes[ships, 2], labels[ships, 2]).max() < 1e-5
    np.testing.assert_allclose(rotated_iou(boxes[ships], labels[ships]), 1.0, atol=1e-5)
    assert np.all(presence[ships] > 0.99) and np.all(presence[~ships] < 0.01)


@pytest.mark.parametrize("stride", [4, 8])
@pytest.mark.parametrize("radius", [0, 1, 2])
def test_every_cell_that_learns_the_box_decodes_to_it(batch, stride, radius):
    _, labels = batch
    targets = encode_targets(labels, stride, radius)
    ships = np.flatnonzero(~np.isnan(labels).any(axis=1))
    for row in ships:
        cells = np.argwhere(targets[row, ..., 1] > 0)
        centre = np.floor(labels[row, :2] / stride)[::-1]  # (y, x) of the centre cell
        assert np.abs(cells - centre).max() <= radius
        assert len(cells) <= (2 * radius + 1) ** 2 and targets[row, ..., 0].max() == 1.0
        for y, x in cells:  # each of them, read as the peak, gives back the true box
            centre_x = (x + targets[row, y, x, 2]) * stride
            centre_y = (y + targets[row, y, x, 3]) * stride
            np.testing.assert_allclose([centre_x, centre_y], labels[row, :2], atol=1e-4)
    assert not targets[~np.isin(np.arange(len(labels)), ships)].any()


def test_a_radius_of_zero_trains_the_centre_cell_alone(batch):
    _, labels = batch
    targets = encode_targets(labels, 8, regression_radius=0)
    np.testing.assert_array_equal(targets[..., 1] > 0, targets[..., 0] >= 1.0)
    with pytest.raises(ValueError, match="regression_radius"):
        encode_targets(labels, 8, regression_radius=-1)


def test_a_design_splits_into_network_and_target_options():
    network, targets = split_design({**DESIGNS["fast"], "regression_radius": 0})
    assert network == DESIGNS["fast"]
    assert targets == {"stride": 8, "regression_radius": 0}
    assert split_design({}) == ({}, {"stride": 8})
    with pytest.raises(ValueError, match="widht"):
        split_design({"widht": 32})


def test_empty_images_have_empty_targets(batch):
    targets = encode_targets(np.full((2, 5), np.nan))
    assert targets.shape == (2, GRID, GRID, 9) and not targets.any()


def test_loss_prefers_the_truth_and_handles_empty_batches(batch):
    _, labels = batch
    targets = encode_targets(labels)
    perfect = float(detector_loss(targets, outputs_from_targets(targets)))
    noisy = float(
        detector_loss(
            targets,
            np.random.default_rng(1)
            .normal(size=targets.shape[:-1] + (OUTPUT_CHANNELS,))
            .astype(np.float32),
        )
    )
    assert np.isfinite(perfect) and perfect < 0.1 * noisy
    empty = encode_targets(np.full((2, 5), np.nan))
    assert np.isfinite(
        float(detector_loss(empty, np.zeros((2, GRID, GRID, OUTPUT_CHANNELS), "float32")))
    )


def test_decode_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="outputs must have shape"):
        decode_predictions(np.zeros((1, 10, 10, 8)))
    with pytest.raises(ValueError, match="targets must have 9 channels"):
        outputs_from_targets(np.zeros((1, GRID, GRID, 8)))


def test_memorising_a_fixed_batch_reduces_the_loss(batch):
    images, labels = batch
    _, losses = memorise_batch(
        images, labels, steps=15, learning_rate=3e-3, network=build_detector(16, (1, 2))
    )
    # Training-mode losses: batch normalisation's running statistics lag far behind after
    # a handful of steps, so inference-mode numbers would not show the progress yet.
    assert len(losses) == 15 and losses[-1] < 0.7 * losses[0]
    with pytest.raises(ValueError, match="same number of samples"):
        memorise_batch(images, labels[:3], steps=1)


def test_detector_trains_through_the_common_loop_and_loads_as_a_pipeline(tmp_path):
    from spaceship_utils.pretrained import install_run, load_pretrained
    from spaceship_utils.train import TrainingConfig, train_model

    config = TrainingConfig(
        task="detector",
        epochs=1,
        steps_per_epoch=2,
        batch_size=4,
        validation_samples=8,
        schedule="cosine",
        detector_options=dict(DESIGNS["fast"]),
    )
    history = train_model(config, tmp_path / "run", verbose=False).history
    assert np.isfinite(history["loss"]).all() and "val_ap07" in history
    install_run("detector", "detector", tmp_path / "run", tmp_path / "weights")
    model = load_pretrained("detector", tmp_path / "weights")
    boxes = model.predict(generate_batch(3, np.random.default_rng(1))[0])
    assert boxes.shape == (3, 5) and model.networks == (model.network,)
    assert model.network.output_shape == (None, 25, 25, 8)  # the design travels with the weights


def test_target_figure_shows_the_heatmap_and_the_decoded_box(batch):
    from spaceship_utils.plotting import plot_detector_targets

    images, labels = batch
    ship = int(np.flatnonzero(~np.isnan(labels).any(axis=1))[0])
    targets = encode_targets(labels[ship : ship + 1])
    boxes, _ = decode_predictions(outputs_from_targets(targets))
    fig = plot_detector_targets(images[ship], labels[ship], targets[0, ..., 0], boxes[0])
    left, right = fig.axes[:2]
    assert right.images[0].get_array().shape == (GRID, GRID)
    assert len(left.lines) == 1 and len(right.lines) == 1  # the true box, the decoded box
    with pytest.raises(ValueError, match="heatmap"):
        plot_detector_targets(images[ship], labels[ship], targets[0], boxes[0])


def test_refreshed_statistics_make_inference_match_training_mode(batch):
    from spaceship_utils.detector import refresh_batch_statistics

    images, labels = batch
    network, _ = memorise_batch(images[:4], labels[:4], steps=3, network=build_detector(8, (1,)))
    x = images[:4].astype(np.float32)
    training = keras.ops.convert_to_numpy(network(x, training=True))
    before = keras.ops.convert_to_numpy(network(x, training=False))
    assert not np.allclose(before, training, atol=1e-3)
    refresh_batch_statistics(network, images[:4])
    after = keras.ops.convert_to_numpy(network(x, training=False))
    # Keras adds epsilon to the variance in both modes, so the two agree to rounding.
    np.testing.assert_allclose(after, training, atol=1e-3)
    norms = [
        layer for layer in network.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert all(layer.momentum == 0.99 for layer in norms)
