import keras
import numpy as np
import pytest

from spaceship_utils.core.geometry import rotated_iou, wrapped_angle_error
from spaceship_utils.data.generator import generate_batch
from spaceship_utils.networks.detector import (
    DESIGNS,
    ThresholdChannels,
    build_detector,
    split_design,
)
from spaceship_utils.networks.detector_loss import detector_loss
from spaceship_utils.networks.detector_targets import (
    GRID,
    OUTPUT_CHANNELS,
    decode_predictions,
    encode_targets,
    outputs_from_targets,
    second_peak_predictions,
)
from spaceship_utils.networks.diagnostics import memorise_batch
from tests.helpers import generated, tiny_config


@pytest.fixture(scope="module")
def batch():
    return generated(16, seed=0)


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


def test_the_raw_only_detector_reads_one_channel_and_names_a_wrong_input_option():
    two = build_detector(width=16, dilations=(1,))
    one = build_detector(width=16, dilations=(1,), inputs="raw")
    assert one.output_shape == two.output_shape
    # The stem's 3x3 convolution sees 8 x 8 x 1 values per cell instead of 8 x 8 x 2.
    stem_kernel = {model: model.get_layer("stem1_conv").kernel.shape for model in (one, two)}
    assert stem_kernel[one] == (3, 3, 64, 16) and stem_kernel[two] == (3, 3, 128, 16)
    with pytest.raises(ValueError, match="inputs must be"):
        build_detector(inputs="thresholded")


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
    assert split_design({"box_loss": "l1+gwd"}) == ({}, {"stride": 8})  # the loss's, not theirs
    with pytest.raises(ValueError, match="widht"):
        split_design({"widht": 32})
    from spaceship_utils.training.recipes import TrainingConfig

    with pytest.raises(ValueError, match="box_loss must be one of"):
        TrainingConfig(task="detector", detector_options={"box_loss": "giou"})


def test_a_centre_outside_the_image_is_refused_by_name():
    with pytest.raises(ValueError, match=r"labels\[1\] puts the ship's centre at \[250.0, 10.0\]"):
        encode_targets(np.array([[100, 100, 0, 30, 40], [250, 10, 0, 30, 40]], dtype=float))


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


def test_the_second_peak_is_read_outside_the_peaks_square():
    outputs = np.zeros((1, GRID, GRID, OUTPUT_CHANNELS))
    outputs[..., 0] = -10.0  # heatmap logits: nothing here...
    outputs[0, 10, 10, 0] = 5.0  # ...but the peak (row 10, column 10),
    outputs[0, 10, 12, 0] = 4.0  # a neighbour within 2 cells of it,
    outputs[0, 18, 10, 0] = 3.0  # and a lower bump farther away,
    outputs[0, 18, 10, 1:3] = 0.5  # half a cell into it
    boxes, presence = second_peak_predictions(outputs, clearance=2)
    np.testing.assert_allclose(boxes[0, :2], [10.5 * 8, 18.5 * 8])  # (x, y) px, 8 px cells
    assert presence[0] == pytest.approx(1 / (1 + np.exp(-3.0)))
    np.testing.assert_allclose(decode_predictions(outputs)[0][0, :2], [80.0, 80.0])  # untouched
    boxes, _ = second_peak_predictions(outputs, clearance=1)
    np.testing.assert_allclose(boxes[0, :2], [12 * 8, 10 * 8])  # the neighbour is outside now
    with pytest.raises(ValueError, match="clearance must leave cells"):
        second_peak_predictions(outputs, clearance=12)


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


@pytest.mark.slow
def test_detector_trains_through_the_common_loop_and_loads_as_a_pipeline(tmp_path):
    from spaceship_utils.pretrained import install_run, load_pretrained
    from spaceship_utils.training.loop import train_model

    config = tiny_config(
        "detector", recipe=False, schedule="cosine", detector_options=dict(DESIGNS["fast"])
    )
    history = train_model(config, tmp_path / "run", verbose=False).history
    assert np.isfinite(history["loss"]).all() and "val_ap07" in history
    install_run("detector", "detector", tmp_path / "run", tmp_path / "weights")
    model = load_pretrained("detector", tmp_path / "weights")
    boxes = model.predict(generate_batch(3, np.random.default_rng(1))[0])
    assert boxes.shape == (3, 5) and model.networks == (model.network,)
    assert model.network.output_shape == (None, 25, 25, 8)  # the design travels with the weights


def test_target_figure_shows_the_heatmap_and_the_decoded_box(batch):
    from spaceship_utils.plotting.detection import plot_detector_targets

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
    from spaceship_utils.networks.diagnostics import refresh_batch_statistics

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


def _box_channels(dx, dy, width, height, yaw):
    """Rows of the detector's box channels (dx, dy, log w, log h, sin 2yaw, cos 2yaw)."""
    from spaceship_utils.networks.detector_targets import SIZE_REFERENCE

    return np.array(
        [
            dx,
            dy,
            np.log(width / SIZE_REFERENCE[0]),
            np.log(height / SIZE_REFERENCE[1]),
            np.sin(2 * yaw),
            np.cos(2 * yaw),
        ],
        dtype=np.float32,
    ).T


def _matrix_sqrt(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return vectors @ np.diag(np.sqrt(np.clip(values, 0, None))) @ vectors.T


def _wasserstein_by_matrices(centre1, centre2, width1, height1, yaw1, width2, height2, yaw2):
    def covariance(width, height, yaw):
        turn = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
        return turn @ np.diag([width**2 / 4, height**2 / 4]) @ turn.T

    first, second = covariance(width1, height1, yaw1), covariance(width2, height2, yaw2)
    root = _matrix_sqrt(first)
    cross = np.trace(_matrix_sqrt(root @ second @ root))
    squared = np.sum((centre1 - centre2) ** 2) + np.trace(first) + np.trace(second) - 2 * cross
    return np.sqrt(max(squared, 0.0))


def test_the_gaussian_wasserstein_distance_matches_matrix_square_roots():
    from spaceship_utils.networks.detector_loss import gaussian_wasserstein_distance

    rng = np.random.default_rng(3)
    count = 64
    sizes = rng.uniform(15, 45, size=(count, 4))
    yaws = rng.uniform(0, 2 * np.pi, size=(count, 2))
    offsets = rng.uniform(-1, 2, size=(count, 4))
    first = _box_channels(*offsets[:, :2].T, sizes[:, 0], sizes[:, 1], yaws[:, 0])
    second = _box_channels(*offsets[:, 2:].T, sizes[:, 2], sizes[:, 3], yaws[:, 1])
    distance = keras.ops.convert_to_numpy(gaussian_wasserstein_distance(first, second, stride=8))
    expected = [
        _wasserstein_by_matrices(
            8 * offsets[i, :2],
            8 * offsets[i, 2:],
            *sizes[i, :2],
            yaws[i, 0],
            *sizes[i, 2:],
            yaws[i, 1],
        )
        for i in range(count)
    ]
    np.testing.assert_allclose(distance, expected, rtol=1e-3, atol=2e-2)


def test_the_gaussian_distance_is_zero_for_the_same_box_and_blind_to_the_nose():
    from spaceship_utils.networks.detector_loss import gaussian_wasserstein_distance

    box = _box_channels([0.3], [0.6], np.array([27.0]), np.array([40.0]), np.array([0.4]))
    flipped = _box_channels(
        [0.3], [0.6], np.array([27.0]), np.array([40.0]), np.array([0.4 + np.pi])
    )
    turned = _box_channels(
        [0.3], [0.6], np.array([40.0]), np.array([27.0]), np.array([0.4 + np.pi / 2])
    )
    shifted = _box_channels([0.55], [0.6], np.array([27.0]), np.array([40.0]), np.array([0.4]))
    for same in (box, flipped, turned):
        assert float(gaussian_wasserstein_distance(box, same)[0]) < 0.01
    # The same box two pixels to the side (a quarter of an 8-pixel cell) is 2 px away.
    assert float(gaussian_wasserstein_distance(box, shifted)[0]) == pytest.approx(2.0, abs=1e-3)


def test_the_gwd_loss_adds_to_the_detector_loss_only_where_boxes_are_learnt(batch):
    from spaceship_utils.networks.detector_loss import design_loss, detector_loss_with_gwd

    _, labels = batch
    targets = encode_targets(labels)
    perfect = outputs_from_targets(targets)
    assert design_loss({}) is detector_loss
    assert design_loss({"box_loss": "l1+gwd"}) is detector_loss_with_gwd
    with pytest.raises(ValueError, match="box_loss must be one of"):
        design_loss({"box_loss": "iou"})
    extra = float(detector_loss_with_gwd(targets, perfect)) - float(detector_loss(targets, perfect))
    assert 0 <= extra < 0.01
    worse = perfect.copy()
    worse[..., 1] += 0.25  # every box 2 px to the right
    gap = float(detector_loss_with_gwd(targets, worse)) - float(detector_loss(targets, worse))
    assert gap == pytest.approx(2 / 3, abs=0.01)  # d / (1 + d) at d = 2 px


def test_the_round_trip_loses_nothing_but_rounding(batch):
    from spaceship_utils.networks.diagnostics import round_trip_errors

    _, labels = batch
    ships = labels[~np.isnan(labels[:, 0])]
    errors = round_trip_errors(ships)
    assert list(errors) == ["position (px)", "size (px)", "yaw (rad)", "smallest IoU"]
    assert errors["position (px)"] < 1e-4 and errors["size (px)"] < 1e-4
    assert errors["yaw (rad)"] < 1e-5 and errors["smallest IoU"] > 0.9999


def test_fit_report_names_the_mode_and_returns_the_decoded_boxes(batch):
    from spaceship_utils.networks.diagnostics import fit_report

    images, labels = batch
    ships = ~np.isnan(labels[:, 0])
    network = build_detector(width=8, dilations=(1,))
    line, boxes = fit_report(network, images[ships][:3], labels[ships][:3], training=False)
    assert line.lstrip().startswith("inference mode: IoU [") and "presence [" in line
    assert boxes.shape == (3, 5) and np.isfinite(boxes).all()
    line, _ = fit_report(network, images[ships][:3], labels[ships][:3], training=True)
    assert line.lstrip().startswith("training mode:")


def test_decoding_an_empty_batch_gives_empty_arrays():
    boxes, presence = decode_predictions(np.zeros((0, GRID, GRID, OUTPUT_CHANNELS)))
    assert boxes.shape == (0, 5) and presence.shape == (0,)
