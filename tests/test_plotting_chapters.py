"""Tests of the chapter 1-3 figures in spaceship_utils.plotting.

`make_data` and `make_layers` draw from NumPy's legacy global stream, as the official
generator does, so these tests seed it with `np.random.seed` (hence the NPY002 waivers).
"""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from spaceship_utils.data.generator import make_layers
from spaceship_utils.data.preprocessing import encode_yaw, threshold_images
from spaceship_utils.plotting.data import (
    plot_label_histograms,
    plot_layer_breakdown,
    plot_pixel_value_densities,
    plot_threshold_comparison,
    plot_threshold_sweep,
    plot_yaw_twins,
)
from spaceship_utils.plotting.labels import plot_component_shares, plot_yaw_codes, plot_yaw_losses
from spaceship_utils.studies.label_losses import iou_vs_yaw_offset
from spaceship_utils.studies.label_statistics import sample_labels
from spaceship_utils.studies.pixel_statistics import classify_pixels, threshold_sweep


@pytest.fixture(scope="module")
def layers():
    np.random.seed(2)  # noqa: NPY002
    return [make_layers(has_spaceship=True) for _ in range(3)]


@pytest.fixture(scope="module")
def sweep(layers):
    images = np.stack([sample.image for sample in layers])
    classes = classify_pixels(
        np.stack([sample.ship for sample in layers]), np.stack([sample.lines for sample in layers])
    )
    return threshold_sweep(images, classes, np.arange(20) / 20)


def _labelled(ax):
    return bool(ax.get_xlabel()) and bool(ax.get_ylabel())


def test_layer_breakdown_shows_the_maximum_of_the_layers(layers):
    sample = layers[0]
    fig = plot_layer_breakdown(sample.noise, sample.lines, sample.ship, sample.label)
    assert isinstance(fig, plt.Figure) and len(fig.axes) == 4
    np.testing.assert_array_equal(fig.axes[3].images[0].get_array(), sample.image)
    assert all(ax.get_title() for ax in fig.axes)
    assert fig.axes[0].get_ylabel() and all(ax.get_xlabel() for ax in fig.axes)
    # The true box (a closed outline of five points) is drawn on the last two panels.
    assert [len(ax.lines) for ax in fig.axes] == [0, 0, 1, 1]


def test_label_histograms_count_every_ship_and_the_split():
    labels = sample_labels(500, np.random.default_rng(0))
    bounds = [(10, 190), (10, 190), (0, 2 * np.pi), (18, 37), (0, 74)]
    fig = plot_label_histograms(labels, bounds=bounds)
    assert isinstance(fig, plt.Figure) and len(fig.axes) == 6
    ships = int((~np.isnan(labels).any(axis=1)).sum())
    for ax in fig.axes[:5]:
        assert _labelled(ax)
        assert sum(patch.get_height() for patch in ax.patches) == ships
        assert len(ax.lines) == 2  # the two bounds
    # Whole-pixel widths get one bin per width: no empty bin between two full ones.
    assert all(patch.get_height() > 0 for patch in fig.axes[3].patches)
    heights = [patch.get_height() for patch in fig.axes[5].patches]
    assert sum(heights) == pytest.approx(100)
    assert fig.axes[0].get_xlabel() == "x (px)"


def test_scaled_widths_are_binned_on_their_grid():
    widths = np.repeat(np.arange(18, 37), 3) / 37.0
    labels = np.column_stack([np.full((widths.size, 3), 0.5), widths, np.full(widths.size, 0.5)])
    fig = plot_label_histograms(labels)
    assert [patch.get_height() for patch in fig.axes[3].patches] == [3] * 19


def test_yaw_twins_titles_differ_by_pi(layers):
    sample = layers[0]
    fig = plot_yaw_twins(sample.ship, sample.label)
    titles = [ax.get_title() for ax in fig.axes]
    yaws = [float(title.split("= ")[1].split(" ")[0]) for title in titles]
    assert np.mod(yaws[1] - yaws[0], 2 * np.pi) == pytest.approx(np.pi, abs=0.01)
    assert all(_labelled(ax) for ax in fig.axes)
    # Zoomed in: the view is smaller than the image.
    assert np.ptp(fig.axes[0].get_xlim()) < 200


def test_threshold_comparison_has_raw_and_thresholded_columns(layers):
    images = np.stack([sample.image for sample in layers])
    boxes = np.stack([sample.label for sample in layers])
    fig = plot_threshold_comparison(images, threshold_images(images), boxes, 0.8)
    assert len(fig.axes) == 12
    assert fig.axes[1].get_title() == "thresholded (>= 0.8)"
    shown = fig.axes[1].images[0].get_array()
    assert shown.min() == 0 and np.all((shown == 0) | (shown >= 0.8))
    assert all(fig.axes[4 * row].get_ylabel() for row in range(3))


def test_threshold_comparison_shades_the_outline_under_the_kept_pixels(layers):
    images = np.stack([sample.image for sample in layers])
    outlines = np.stack([sample.ship for sample in layers])
    boxes = np.stack([sample.label for sample in layers])
    thresholded = threshold_images(images)
    fig = plot_threshold_comparison(images, thresholded, boxes, 0.8, outlines)
    shaded = fig.axes[3].images[1].get_array()  # the outline's pixels the threshold removed
    removed = (outlines[0] > 0) & (thresholded[0] == 0)
    np.testing.assert_array_equal(~np.ma.getmaskarray(shaded), removed)
    assert len(fig.axes[1].images) == 1  # the full thresholded image is left as it is


def test_threshold_sweep_plots_the_kept_shares(sweep):
    fig = plot_threshold_sweep(sweep)
    assert len(fig.axes) == 3 and all(_labelled(ax) for ax in fig.axes)
    ship_line = fig.axes[0].lines[0]
    np.testing.assert_allclose(ship_line.get_ydata(), 100 * sweep.kept_share()[:, 0])
    np.testing.assert_allclose(ship_line.get_xdata(), sweep.thresholds)


def test_pixel_value_densities_have_both_panels(sweep):
    fig = plot_pixel_value_densities(sweep)
    assert len(fig.axes) == 2 and all(_labelled(ax) for ax in fig.axes)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "outline pixels, derived" in labels and "noise pixels, measured" in labels


def test_component_shares_draw_one_bar_per_column_and_scheme():
    shares = {"raw": np.full(5, 0.2), "scaled": np.array([0.1, 0.1, 0.6, 0.1, 0.1])}
    fig = plot_component_shares(shares, shares)
    assert len(fig.axes) == 2 and all(_labelled(ax) for ax in fig.axes)
    heights = [patch.get_height() for patch in fig.axes[0].patches]
    assert len(heights) == 10 and max(heights) == pytest.approx(60)


def test_yaw_codes_and_losses_figures():
    grid = np.linspace(0, 2 * np.pi, 50)
    codes = {encoding: encode_yaw(grid, encoding) for encoding in ("raw", "sincos", "sincos2")}
    fig = plot_yaw_codes(grid, codes)
    assert len(fig.axes) == 3 and [len(ax.lines) for ax in fig.axes] == [1, 2, 2]
    assert all(ax.get_xlabel() for ax in fig.axes) and fig.axes[0].get_ylabel()

    losses = {"raw": (grid / (2 * np.pi)) ** 2, "sincos": 1 - np.cos(grid)}
    one_minus_iou = 1 - iou_vs_yaw_offset(np.array([100.0, 100, 0.0, 20, 30]), grid)
    fig = plot_yaw_losses(grid, losses, one_minus_iou, yaw_true_rad=0.0)
    assert len(fig.axes) == 2 and all(_labelled(ax) for ax in fig.axes)
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), one_minus_iou)
