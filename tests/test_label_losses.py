"""Tests of spaceship_utils.studies.label_losses: label columns and yaw codes in a loss."""

import numpy as np
import pytest

from spaceship_utils.data.preprocessing import LABEL_SCALE
from spaceship_utils.studies.label_losses import (
    LARGEST_YAW_LOSS,
    component_gradient_shares,
    component_loss_shares,
    encoded_yaw_loss,
    iou_vs_yaw_offset,
    mean_label_predictor,
    wrap_around,
)
from spaceship_utils.studies.label_statistics import sample_labels, ship_rows

NAN_ROW = [np.nan] * 5


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
