import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest

from spaceship_utils.core.geometry import box_corners, rotated_iou
from spaceship_utils.data.generator import generate_batch
from spaceship_utils.networks.detector_loss import (
    design_loss,
    detector_loss,
    detector_loss_with_rotated_iou,
)
from spaceship_utils.networks.detector_targets import (
    boxes_from_channels,
    encode_targets,
    outputs_from_targets,
)
from spaceship_utils.networks.rotated_iou_loss import box_corners_tensor, rotated_iou_tensor


def _box_pairs(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random overlapping pairs plus the awkward cases: the same box, boxes far apart, one
    box inside the other, a quarter turn, and a box turned by half a turn (the same box)."""
    rng = np.random.default_rng(seed)
    first = np.column_stack(
        [
            rng.uniform(20, 180, (count, 2)),
            rng.uniform(0, 2 * np.pi, count),
            rng.uniform(18, 36, count),
            rng.uniform(25, 60, count),
        ]
    )
    second = first + np.column_stack(
        [rng.normal(0, 5, (count, 2)), rng.normal(0, 0.4, count), rng.normal(0, 4, (count, 2))]
    )
    second[:, 3:] = np.maximum(second[:, 3:], 5.0)
    second[:10] = first[:10]
    second[10:20, :2] += 100.0
    second[20:30] = first[20:30]
    second[20:30, 3:] *= 0.5
    second[30:40, 2] += np.pi / 2
    second[40:50] = first[40:50]
    second[40:50, 2] += np.pi
    return first, second


def test_the_corners_match_the_scorers_corners():
    boxes, _ = _box_pairs(50, seed=0)
    xs, ys = box_corners_tensor(keras.ops.convert_to_tensor(boxes, "float32"))
    corners = np.stack([keras.ops.convert_to_numpy(xs), keras.ops.convert_to_numpy(ys)], -1)
    np.testing.assert_allclose(corners, box_corners(boxes), atol=1e-3)


def test_the_tensor_iou_matches_the_scorers_shapely_iou():
    first, second = _box_pairs(400, seed=1)
    expected = rotated_iou(first, second)
    got = keras.ops.convert_to_numpy(rotated_iou_tensor(first, second))
    np.testing.assert_allclose(got, expected, atol=2e-4)
    np.testing.assert_allclose(got[:10], 1.0, atol=1e-5)  # the same box
    np.testing.assert_allclose(got[10:20], 0.0)  # far apart
    np.testing.assert_allclose(got[20:30], 0.25, atol=1e-4)  # inside, half size each way
    np.testing.assert_allclose(got[40:50], 1.0, atol=1e-5)  # the nose does not count
    reverse = keras.ops.convert_to_numpy(rotated_iou_tensor(second, first))
    np.testing.assert_allclose(reverse, got, atol=2e-4)


def _gradient(function, value: np.ndarray) -> np.ndarray:
    tf = pytest.importorskip("tensorflow")
    variable = tf.Variable(value.astype(np.float32))
    with tf.GradientTape() as tape:
        result = tf.reduce_sum(function(variable))
    return tape.gradient(result, variable).numpy()


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="uses tf.GradientTape")
def test_the_iou_gradient_matches_finite_differences():
    first, second = _box_pairs(60, seed=2)
    overlapping = slice(50, 60)  # random overlapping pairs, no ties between corners
    first, second = first[overlapping], second[overlapping]
    analytic = _gradient(lambda boxes: rotated_iou_tensor(first, boxes), second)
    step = 1e-4  # shapely's float64 IoU takes a fine step
    numeric = np.zeros_like(second)
    for column in range(5):
        up, down = second.copy(), second.copy()
        up[:, column] += step
        down[:, column] -= step
        numeric[:, column] = (rotated_iou(first, up) - rotated_iou(first, down)) / (2 * step)
    np.testing.assert_allclose(analytic, numeric, atol=2e-3, rtol=2e-2)


def test_boxes_from_channels_read_the_encoded_targets_back():
    _, labels = generate_batch(8, np.random.default_rng(4), ship_probability=1.0)
    targets = encode_targets(labels)
    n, gy, gx = np.nonzero(targets[..., 0] >= 1.0)  # the centre cells
    channels = targets[n, gy, gx, 2:8]
    boxes = keras.ops.convert_to_numpy(boxes_from_channels(channels))
    boxes[:, :2] += 8 * np.column_stack([gx, gy])  # back from the cell's corner to the image
    np.testing.assert_allclose(rotated_iou(boxes, labels[n]), 1.0, atol=1e-5)


def test_the_iou_loss_adds_one_minus_iou_where_boxes_are_learnt():
    _, labels = generate_batch(16, np.random.default_rng(5))
    targets = encode_targets(labels)
    perfect = outputs_from_targets(targets)
    assert design_loss({"box_loss": "l1+riou"}) is detector_loss_with_rotated_iou
    extra = float(detector_loss_with_rotated_iou(targets, perfect)) - float(
        detector_loss(targets, perfect)
    )
    assert 0 <= extra < 1e-4
    shifted = perfect.copy()
    shifted[..., 1] += 0.25  # every box 2 px to the right
    gap = float(detector_loss_with_rotated_iou(targets, shifted)) - float(
        detector_loss(targets, shifted)
    )
    ships = labels[~np.isnan(labels[:, 0])]
    moved = ships + [2.0, 0, 0, 0, 0]
    # Every learning cell of a ship holds the same box, so the mean is over ships.
    assert gap == pytest.approx(np.mean(1 - rotated_iou(ships, moved)), abs=1e-3)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="uses tf.GradientTape")
def test_the_iou_loss_gradient_is_finite_for_an_untrained_networks_outputs():
    _, labels = generate_batch(8, np.random.default_rng(6))
    targets = encode_targets(labels)
    untrained = np.zeros(targets.shape[:-1] + (8,), dtype=np.float32)  # sin = cos = 0
    untrained[0, :5, :5, 5] = 1e-4  # and some axes on the edge of 'unsure'
    gradient = _gradient(lambda y_pred: detector_loss_with_rotated_iou(targets, y_pred), untrained)
    assert np.all(np.isfinite(gradient))
    assert np.any(gradient[..., 3:5] != 0)  # the sizes learn from the IoU term already


def _candidates(first, second):
    from spaceship_utils.networks.rotated_iou_loss import overlap_corner_candidates

    xs, ys, real = overlap_corner_candidates(
        keras.ops.convert_to_tensor(first, "float32"),
        keras.ops.convert_to_tensor(second, "float32"),
    )
    return (keras.ops.convert_to_numpy(values)[0] for values in (xs, ys, real))


def test_the_overlap_corners_are_inner_corners_or_edge_crossings():
    big = np.array([[100.0, 100.0, 0.3, 30.0, 50.0]])
    small = np.array([[102.0, 98.0, 0.5, 10.0, 14.0]])
    _, _, real = _candidates(big, small)
    # The small box lies inside the big one: its 4 corners are the overlap's, nothing else.
    assert not real[:4].any() and real[4:8].all() and not real[8:].any()
    across = np.array([[100.0, 100.0, 0.0, 10.0, 40.0]])
    along = np.array([[100.0, 100.0, 0.0, 40.0, 10.0]])
    xs, ys, real = _candidates(across, along)
    # A cross: no corner of either box is inside the other; 4 crossings make the square.
    assert not real[:8].any() and real[8:].sum() == 4
    np.testing.assert_allclose(sorted(set(np.round(xs[real], 3))), [95.0, 105.0])
    np.testing.assert_allclose(sorted(set(np.round(ys[real], 3))), [95.0, 105.0])


def test_the_overlap_figure_marks_corners_and_crossings():
    from spaceship_utils.plotting.detection import plot_overlap_construction

    first = np.array([[100.0, 100.0, 0.3, 30.0, 50.0]])
    second = np.array([[108.0, 95.0, 1.1, 26.0, 44.0]])
    xs, ys, real = _candidates(first, second)
    fig = plot_overlap_construction(first[0], second[0], xs, ys, real, iou=0.5)
    ax = fig.axes[0]
    assert [text.get_text() for text in fig.legends[0].get_texts()] == [
        "box A",
        "box B",
        "overlap (IoU 0.500)",
        "corner inside the other",
        "edges crossing",
    ]
    marked = sum(len(line.get_xdata()) for line in ax.lines if line.get_linestyle() == "None")
    assert marked == int(real.sum())
    with pytest.raises(ValueError, match="24 candidates"):
        plot_overlap_construction(first[0], second[0], xs[:8], ys[:8], real[:8], iou=0.5)
    plt.close(fig)


def test_the_iou_term_reads_every_learning_cell_and_refuses_a_radius_it_cannot():
    from spaceship_utils.networks.detector_loss import IOU_CELLS_PER_IMAGE

    _, labels = generate_batch(6, np.random.default_rng(7), ship_probability=1.0)
    for radius in (0, 2):
        targets = encode_targets(labels, regression_radius=radius)
        assert targets[..., 1].reshape(6, -1).sum(axis=1).max() <= IOU_CELLS_PER_IMAGE
        outputs = outputs_from_targets(targets)
        outputs[..., 3] += 0.1  # every learning cell's width 10 % too large
        gap = float(detector_loss_with_rotated_iou(targets, outputs)) - float(
            detector_loss(targets, outputs)
        )
        widened = labels * [1, 1, 1, np.exp(0.1), 1]
        assert gap == pytest.approx(np.mean(1 - rotated_iou(labels, widened)), abs=1e-4)
    design_loss({"box_loss": "l1+riou", "regression_radius": 2})
    with pytest.raises(ValueError, match="regression_radius of at most 2"):
        design_loss({"box_loss": "l1+riou", "regression_radius": 3})
