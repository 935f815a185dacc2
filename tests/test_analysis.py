"""Tests of the chapter 1-3 statistics in spaceship_utils.analysis.

`make_data` and `make_layers` draw from NumPy's legacy global stream, as the official
generator does, so these tests seed it with `np.random.seed` (hence the NPY002 waivers).
"""

import numpy as np
import pytest

from spaceship_utils.analysis import (
    LARGEST_YAW_LOSS,
    PIXEL_CLASSES,
    box_leaves_image,
    classify_pixels,
    component_gradient_shares,
    component_loss_shares,
    describe_labels,
    draw_samples,
    encoded_yaw_loss,
    format_table,
    generator_bounds,
    generator_rules,
    iou_vs_yaw_offset,
    label_table,
    likelihood_ratio,
    mean_label_predictor,
    noise_pixel_density,
    noise_pixel_mean,
    outline_hull,
    outline_leaves_image,
    sample_labels,
    ship_pixel_density,
    ship_pixel_mean,
    ship_rows,
    ship_share,
    sweep_layers,
    threshold_sweep,
    turn_boxes,
    wrap_around,
)
from spaceship_utils.data import make_data, make_layers
from spaceship_utils.preprocessing import LABEL_SCALE

NAN_ROW = [np.nan] * 5


# --- Chapter 1 ---------------------------------------------------------------------------


def test_label_table_summarises_ship_rows_only():
    labels = np.array(
        [[10.0, 20.0, 0.5, 18.0, 27.5], NAN_ROW, [30.0, 15.0, 6.0, 36.0, 50.0]],
        dtype=np.float32,
    )
    table = label_table(labels)
    assert [row.name for row in table] == ["x", "y", "yaw", "width", "height"]
    assert [row.unit for row in table] == ["px", "px", "rad", "px", "px"]
    assert (table[0].minimum, table[0].maximum) == (10.0, 30.0)
    assert (table[1].minimum, table[1].maximum) == (15.0, 20.0)
    assert [row.integer_valued for row in table] == [True, True, False, True, False]
    assert {row.dtype for row in table} == {"float32"}


def test_label_table_needs_a_ship():
    with pytest.raises(ValueError, match="labels must hold at least one row with a ship"):
        label_table(np.array([NAN_ROW, NAN_ROW]))


def test_generator_rules_follow_the_constants():
    rules = generator_rules()
    assert rules[0] == rules[1] == "integer in [10, 190)"
    assert rules[3] == "integer in [18, 37)"
    assert generator_rules(256)[0] == "integer in [10, 246)"


def test_generator_bounds_follow_the_constants():
    bounds = generator_bounds()
    assert bounds[0] == bounds[1] == (10.0, 190.0)
    assert bounds[2] == (0.0, 2 * np.pi) and bounds[3] == (18.0, 37.0) and bounds[4] == ()


def test_describe_labels_prints_one_row_per_column():
    labels = np.array([[10.0, 20.0, 0.5, 18.0, 27.5], [30.0, 15.0, 6.0, 36.0, 50.0]])
    lines = describe_labels(labels, generator_rules()).splitlines()
    assert len(lines) == 7 and lines[0].split()[:3] == ["index", "name", "unit"]
    assert lines[2].split() == [
        "0",
        "x",
        "px",
        "10",
        "30",
        "yes",
        "float64",
        "integer",
        "in",
        "[10,",
        "190)",
    ]
    scaled = describe_labels(labels, units=["scaled"] * 5).splitlines()
    assert scaled[4].split()[:3] == ["2", "yaw", "scaled"]
    with pytest.raises(ValueError, match="rules"):
        describe_labels(labels, ["one rule"])


def test_draw_samples_follows_the_official_stream():
    np.random.seed(4)  # noqa: NPY002
    images, labels = draw_samples(3)
    np.random.seed(4)  # noqa: NPY002
    expected = [make_data() for _ in range(3)]
    assert images.shape == (3, 200, 200) and labels.shape == (3, 5)
    for index, (image, label) in enumerate(expected):
        np.testing.assert_array_equal(images[index], image)
        np.testing.assert_array_equal(labels[index], label)


def test_format_table_aligns_columns():
    text = format_table(["name", "n"], [["x", 1], ["width", 22]])
    assert text.splitlines() == ["name   n", "-----  --", "x      1", "width  22"]
    with pytest.raises(ValueError, match="rows must all have 2 cells"):
        format_table(["name", "n"], [["x"]])


def test_sample_labels_is_chunked_and_reproducible():
    first = sample_labels(25, np.random.default_rng(3), chunk_size=10)
    again = sample_labels(25, np.random.default_rng(3), chunk_size=10)
    assert first.shape == (25, 5) and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    with pytest.raises(ValueError, match="count"):
        sample_labels(0, np.random.default_rng(0))


def test_ship_share_counts_rows_without_nan():
    box = [100.0, 100.0, 1.0, 20.0, 30.0]
    assert ship_share(np.array([box, NAN_ROW, box, box])) == 0.75
    with pytest.raises(ValueError, match="labels"):
        ship_share(np.zeros((3, 4)))


def test_turn_boxes_wraps_the_yaw():
    turned = turn_boxes(np.array([[1.0, 2.0, 6.0, 3.0, 4.0]]), np.pi)
    np.testing.assert_allclose(turned, [[1.0, 2.0, 6.0 + np.pi - 2 * np.pi, 3.0, 4.0]])


def test_outline_hull_of_an_upright_ship():
    hull = outline_hull(np.array([[100.0, 100.0, 0.0, 20.0, 30.0]]))[0]
    # yaw 0: the nose points along +y, the wing tips sit half a height behind the centre.
    np.testing.assert_allclose(hull, [[100, 115], [90, 85], [110, 85]], atol=1e-12)


def test_outline_leaves_image_for_a_ship_pointing_out():
    boxes = np.array(
        [
            [100.0, 100.0, 1.0, 30.0, 45.0],  # in the middle
            [10.0, 100.0, 1.5 * np.pi, 20.0, 30.0],  # at the left edge, nose towards -x
            [10.0, 100.0, 0.5 * np.pi, 20.0, 30.0],  # at the left edge, wing tips 5 px past it
            [100.0, 16.0, np.pi + 0.3, 20.0, 30.0],  # only a front corner of the box is out
            [190.0, 190.0, 0.0, 18.0, 20.0],  # nose on y = 200, one row past the last
            NAN_ROW,
        ]
    )
    np.testing.assert_array_equal(
        outline_leaves_image(boxes), [False, True, True, False, True, False]
    )
    np.testing.assert_array_equal(box_leaves_image(boxes), [False, True, True, True, True, False])


def test_outline_leaves_image_agrees_with_the_drawn_pixels():
    # A clipped outline must touch the border; an outline that stays inside is never clipped.
    clipped_count = 0
    for seed in range(300):
        np.random.seed(seed)  # noqa: NPY002
        layers = make_layers(has_spaceship=True)
        drawn = layers.ship > 0
        touches = drawn[0].any() or drawn[-1].any() or drawn[:, 0].any() or drawn[:, -1].any()
        clipped = outline_leaves_image(layers.label)[0]
        clipped_count += clipped
        assert touches or not clipped
    assert clipped_count > 5


def test_densities_integrate_to_one_and_match_sampling():
    grid = np.linspace(0, 1, 200_001)
    for density in (ship_pixel_density, noise_pixel_density):
        assert np.trapezoid(density(grid), grid) == pytest.approx(1, abs=1e-3)
    rng = np.random.default_rng(0)
    ship = np.maximum(rng.random(400_000), 0.8 * rng.random(400_000))
    counts, edges = np.histogram(ship, bins=20, range=(0, 1), density=True)
    centres = (edges[:-1] + edges[1:]) / 2
    np.testing.assert_allclose(counts, ship_pixel_density(centres), atol=0.03)


def test_likelihood_ratio_is_two_v_below_the_noise_level():
    values = np.array([0.1, 0.5, 0.79, 0.85])
    np.testing.assert_allclose(likelihood_ratio(values), [0.2, 1.0, 1.58, np.inf])
    with pytest.raises(ValueError, match="noise_level"):
        likelihood_ratio(values, noise_level=0)


def test_pixel_means_are_derived_exactly():
    assert ship_pixel_mean() == pytest.approx(2 * 0.8**2 / 3 + (1 - 0.8**2) / 2)
    assert ship_pixel_mean(0.8) == pytest.approx(1.6 / 3)
    assert noise_pixel_mean() == pytest.approx(0.4)
    assert noise_pixel_mean(0.5) == pytest.approx(0.25)
    rng = np.random.default_rng(1)
    ship = np.maximum(rng.random(400_000), 0.8 * rng.random(400_000))
    assert ship[ship < 0.9].mean() == pytest.approx(ship_pixel_mean(0.9), abs=2e-3)
    with pytest.raises(ValueError, match="cutoff"):
        ship_pixel_mean(0.0)


def test_classify_pixels_prefers_ship_over_line():
    ship = np.zeros((200, 200))
    lines = np.zeros((200, 200))
    ship[0, :2] = 0.3
    lines[0, 1:3] = 0.6
    classes = classify_pixels(ship, lines)
    assert classes.shape == (1, 200, 200) and classes.dtype == np.int8
    np.testing.assert_array_equal(classes[0, 0, :4], [0, 0, 1, 2])
    assert PIXEL_CLASSES[2] == "noise"


def _hand_built_image():
    """Two ship pixels (0.9, 0.5), two line pixels (0.85, 0.3), the rest noise at 0.1 or 0.7."""
    image = np.full((200, 200), 0.1)
    classes = np.full((200, 200), 2, dtype=np.int8)
    image[0, :4] = [0.9, 0.5, 0.85, 0.3]
    classes[0, :4] = [0, 0, 1, 1]
    image[1, :100] = 0.7
    return image, classes


def test_threshold_sweep_on_a_hand_built_image():
    image, classes = _hand_built_image()
    sweep = threshold_sweep(image, classes, [0.0, 0.6, 0.8], bins=10)
    np.testing.assert_array_equal(sweep.pixel_counts, [[2, 2, 39_996]])
    np.testing.assert_array_equal(sweep.kept_counts[0], [[2, 2, 39_996], [1, 1, 100], [1, 1, 0]])
    np.testing.assert_allclose(
        sweep.kept_share(), [[1, 1, 1], [0.5, 0.5, 100 / 39_996], [0.5, 0.5, 0]]
    )
    np.testing.assert_allclose(sweep.ship_share_of_kept(), [2 / 40_000, 1 / 102, 1 / 2])
    # Below 0.8: ship 0.5, line 0.3, noise 39_896 * 0.1 + 100 * 0.7.
    np.testing.assert_allclose(sweep.mean_below()[2], [0.5, 0.3, (3989.6 + 70) / 39_996])
    assert np.isnan(sweep.mean_below()[0]).all()
    np.testing.assert_array_equal(sweep.value_counts.sum(axis=1), [2, 2, 39_996])
    assert sweep.index_of(0.8) == 2
    with pytest.raises(ValueError, match="was not swept"):
        sweep.index_of(0.5)


def test_outline_snr_by_hand_at_the_top_threshold():
    image, classes = _hand_built_image()
    sweep = threshold_sweep(image, classes, [0.8])
    # Kept: ship (0.9, 0), background = one 0.85 among 39_998 zeros.
    background = np.zeros(39_998)
    background[0] = 0.85
    expected = np.sqrt(2) * (0.45 - background.mean()) / background.std()
    assert sweep.outline_snr[0, 0] == pytest.approx(expected)


def test_outline_snr_is_nan_for_a_flat_background():
    image, classes = _hand_built_image()
    sweep = threshold_sweep(image, classes, [0.95])
    assert np.isnan(sweep.outline_snr[0, 0])


def test_sweep_layers_equals_one_sweep_of_the_stack():
    np.random.seed(5)  # noqa: NPY002
    layers = [make_layers(has_spaceship=True) for _ in range(5)]
    chunked = sweep_layers(iter(layers), [0.0, 0.5, 0.8], chunk_size=2)
    images = np.stack([sample.image for sample in layers])
    classes = classify_pixels(
        np.stack([sample.ship for sample in layers]), np.stack([sample.lines for sample in layers])
    )
    whole = threshold_sweep(images, classes, [0.0, 0.5, 0.8])
    np.testing.assert_array_equal(chunked.kept_counts, whole.kept_counts)
    np.testing.assert_allclose(chunked.outline_snr, whole.outline_snr)
    np.testing.assert_allclose(chunked.below_sums, whole.below_sums)
    np.testing.assert_array_equal(chunked.value_counts, whole.value_counts)
    # The noise never reaches 0.8 (the seed's threshold removes all of it).
    assert chunked.kept_share()[2, 2] == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pixel_classes": np.zeros((1, 200, 199))}, "pixel_classes must have"),
        ({"pixel_classes": np.full((1, 200, 200), 3)}, "codes"),
        ({"thresholds": [1.5]}, "thresholds"),
        ({"thresholds": []}, "at least one"),
    ],
)
def test_threshold_sweep_validates(kwargs, message):
    arguments = {
        "images": np.zeros((1, 200, 200)),
        "pixel_classes": np.zeros((1, 200, 200), dtype=np.int8),
        "thresholds": [0.5],
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        threshold_sweep(**arguments)


def test_sweep_layers_needs_samples():
    with pytest.raises(ValueError, match="at least one sample"):
        sweep_layers(iter([]), [0.5])


# --- Chapter 3 ---------------------------------------------------------------------------


def test_loss_shares_of_hand_built_errors():
    labels = np.zeros((2, 5))
    predictions = np.array([[1.0, 0, 0, 0, 0], [0, 2.0, 0, 0, 1.0]])
    # Squared errors per column: x 1, y 4, height 1 (summed over the two rows).
    np.testing.assert_allclose(
        component_loss_shares(predictions, labels), [1 / 6, 4 / 6, 0, 0, 1 / 6]
    )
    np.testing.assert_allclose(
        component_gradient_shares(predictions, labels), [1 / 4, 2 / 4, 0, 0, 1 / 4]
    )
    scaled = component_loss_shares(predictions, labels, scale=[1, 2, 1, 1, 1])
    np.testing.assert_allclose(scaled, [1 / 3, 1 / 3, 0, 0, 1 / 3])


def test_raw_mse_is_dominated_by_position_and_standardising_balances_it():
    labels = ship_rows(sample_labels(3000, np.random.default_rng(0)))
    naive = mean_label_predictor(labels)
    raw = component_loss_shares(naive, labels)
    assert raw.sum() == pytest.approx(1)
    assert raw[:2].sum() > 0.9 and raw[2] < 0.01
    seed = component_loss_shares(naive, labels, LABEL_SCALE)
    assert seed[2] > 0.1
    balanced = component_loss_shares(naive, labels, labels.std(axis=0))
    np.testing.assert_allclose(balanced, 0.2, atol=1e-9)


def test_shares_reject_nan_rows_and_bad_scales():
    labels = np.zeros((2, 5))
    with pytest.raises(ValueError, match="ship rows only"):
        component_loss_shares(np.array([NAN_ROW, NAN_ROW]), labels)
    with pytest.raises(ValueError, match="scale"):
        component_loss_shares(labels, labels, scale=[1, 1, 0, 1, 1])


def test_encoded_yaw_loss_near_the_seam():
    true, predicted = np.array([0.01]), np.array([2 * np.pi - 0.01])
    raw = encoded_yaw_loss(true, predicted, "raw")[0]
    assert raw == pytest.approx(((2 * np.pi - 0.02) / (2 * np.pi)) ** 2)
    # (sin, cos): the mean squared code error is 1 - cos(angle between them).
    assert encoded_yaw_loss(true, predicted, "sincos")[0] == pytest.approx(1 - np.cos(0.02))
    assert encoded_yaw_loss(np.array([0.3]), np.array([0.3 + np.pi]), "sincos2")[0] == (
        pytest.approx(0, abs=1e-12)
    )
    relative = encoded_yaw_loss(true, predicted, "raw", relative=True)[0]
    assert relative == pytest.approx(raw / LARGEST_YAW_LOSS["raw"])
    opposite = encoded_yaw_loss(np.array([0.2]), np.array([0.2 + np.pi]), "sincos", relative=True)
    assert opposite[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same number of samples"):
        encoded_yaw_loss(np.zeros(2), np.zeros(3))


def test_wrap_around_share_follows_the_offset():
    yaws = np.linspace(0, 2 * np.pi, 100_000, endpoint=False)
    summary = wrap_around(yaws, 0.1)
    assert summary.crossing_share == pytest.approx(0.1 / (2 * np.pi), abs=1e-4)
    assert summary.crossing_loss_share > 0.95
    assert summary.max_angle_error_rad == pytest.approx(0.1)
    assert summary.mean_loss["sincos"] == pytest.approx(1 - np.cos(0.1))
    with pytest.raises(ValueError, match="yaw_offset_rad"):
        wrap_around(yaws, 4.0)


def test_iou_vs_yaw_offset_has_period_pi():
    box = np.array([100.0, 100.0, 0.4, 20.0, 32.0])
    ious = iou_vs_yaw_offset(box, np.array([0.0, np.pi, np.pi / 2, 2 * np.pi]))
    np.testing.assert_allclose(ious[[0, 1, 3]], 1.0, atol=1e-9)
    assert ious[2] < 0.7
    with pytest.raises(ValueError, match="one"):
        iou_vs_yaw_offset(np.array([box, box]), np.zeros(2))
