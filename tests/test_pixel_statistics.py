"""Tests of spaceship_utils.studies.pixel_statistics: pixel densities and what a threshold keeps.

`make_layers` draws from NumPy's legacy global stream, as the official generator does, so
these tests seed it with `np.random.seed` (hence the NPY002 waivers).
"""

import numpy as np
import pytest

from spaceship_utils.data.generator import make_layers
from spaceship_utils.data.pixel_model import (
    likelihood_ratio,
    noise_pixel_density,
    noise_pixel_mean,
    ship_pixel_density,
    ship_pixel_mean,
)
from spaceship_utils.studies.pixel_statistics import (
    PIXEL_CLASSES,
    classify_pixels,
    sweep_layers,
    threshold_sweep,
)


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


def test_a_sweep_counts_each_threshold_directly_in_any_order():
    np.random.seed(6)  # noqa: NPY002
    layers = [make_layers(has_spaceship=True) for _ in range(3)]
    images = np.stack([sample.image for sample in layers])
    classes = classify_pixels(
        np.stack([sample.ship for sample in layers]), np.stack([sample.lines for sample in layers])
    )
    thresholds = [0.8, 0.0, 0.55, 0.3]
    sweep = threshold_sweep(images, classes, thresholds)
    for column, level in enumerate(thresholds):
        kept = images >= level
        for code in range(3):
            counted = (kept & (classes == code)).sum(axis=(1, 2))
            np.testing.assert_array_equal(sweep.kept_counts[:, column, code], counted)
            below = images[~kept & (classes == code)].sum()
            assert sweep.below_sums[column, code] == pytest.approx(below)
        values = np.where(kept, images, 0.0)
        for index in range(len(images)):
            ship, background = values[index][classes[index] == 0], values[index][classes[index] > 0]
            expected = np.sqrt(ship.size) * (ship.mean() - background.mean()) / background.std()
            assert sweep.outline_snr[index, column] == pytest.approx(expected)


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


def test_the_sweep_summary_has_one_row_per_threshold():
    image, classes = _hand_built_image()
    sweep = threshold_sweep(image, classes, [0.0, 0.6, 0.8], bins=10)
    lines = sweep.summary_table().splitlines()
    assert lines[0].split()[:4] == ["threshold", "outline", "kept", "line"]
    assert [line.split()[0] for line in lines[2:]] == ["0.00", "0.60", "0.80"]
    # At 0.8: half the ship and half the line kept, no noise, the ship half of what is kept.
    assert lines[-1].split()[1:5] == ["50.0%", "50.0%", "0.0%", "50.00%"]
    np.testing.assert_array_equal(sweep.median_outline_kept(), [2, 1, 1])


def test_the_sweep_summary_can_show_only_some_thresholds():
    image, classes = _hand_built_image()
    sweep = threshold_sweep(image, classes, [0.0, 0.6, 0.8], bins=10)
    every = sweep.summary_table().splitlines()
    assert sweep.summary_table(thresholds=None) == sweep.summary_table()
    some = sweep.summary_table(thresholds=(0.8, 0.0)).splitlines()
    # The same header and rows as the full table, only the rows asked for, in that order.
    assert some[:2] == every[:2]
    assert [line.split() for line in some[2:]] == [every[4].split(), every[2].split()]
    with pytest.raises(ValueError, match="was not swept"):
        sweep.summary_table(thresholds=(0.5,))


def test_the_outline_share_between_two_values_integrates_the_density():
    from spaceship_utils.data.pixel_model import ship_pixel_density
    from spaceship_utils.studies.pixel_statistics import outline_share_between

    grid = np.linspace(0.5, 0.8, 100_001)
    numeric = np.trapezoid(ship_pixel_density(grid), grid)
    assert outline_share_between(0.5, 0.8) == pytest.approx(numeric, rel=1e-4)
    assert outline_share_between(0.5, 0.8) == pytest.approx((0.8**2 - 0.5**2) / 0.8)
    assert outline_share_between(0.0, 1.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="low must not exceed high"):
        outline_share_between(0.8, 0.5)


def test_outline_pixels_kept_counts_bright_outline_pixels_only():
    from spaceship_utils.studies.pixel_statistics import outline_pixels_kept

    np.random.seed(2)  # noqa: NPY002
    layers = make_layers(has_spaceship=True)
    kept, total = outline_pixels_kept(layers, 0.8)
    assert total == np.count_nonzero(layers.ship) and 0 < kept < total
    assert kept == np.count_nonzero((layers.ship > 0) & (layers.image >= 0.8))
    assert outline_pixels_kept(layers, 0.0) == (total, total)
