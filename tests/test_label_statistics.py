"""Tests of spaceship_utils.studies.label_statistics: label tables and label-box geometry.

`make_data` and `make_layers` draw from NumPy's legacy global stream, as the official
generator does, so these tests seed it with `np.random.seed` (hence the NPY002 waivers).
"""

import numpy as np
import pytest

from spaceship_utils.data.generator import make_data, make_layers
from spaceship_utils.studies.label_statistics import (
    box_leaves_image,
    describe_labels,
    draw_samples,
    generator_bounds,
    generator_rules,
    label_table,
    outline_hull,
    outline_leaves_image,
    sample_labels,
    ship_share,
    turn_boxes,
)

NAN_ROW = [np.nan] * 5


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


def test_draw_samples_takes_one_ship_flag_per_sample():
    np.random.seed(4)  # noqa: NPY002
    _, labels = draw_samples(3, has_spaceship=[True, False, True])
    assert np.isnan(labels).any(axis=1).tolist() == [False, True, False]
    with pytest.raises(ValueError, match="2 values for 3 samples"):
        draw_samples(3, has_spaceship=[True, False])


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
