import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spaceship_utils.core.geometry import box_corners, heading_vectors, rotated_iou
from spaceship_utils.core.metrics import (
    ap_at_iou,
    best_presence_threshold,
    mean_iou,
    ranked_average_precision,
    sample_ious,
)
from spaceship_utils.data.generator import generate_batch
from tests.official_reference import find_problem_statement, load_official_helpers

NAN_ROW = [np.nan] * 5


def test_axis_aligned_box_corners():
    corners = box_corners(np.array([[10.0, 20.0, 0.0, 4.0, 6.0]]))[0]
    np.testing.assert_allclose(corners, [[8, 17], [8, 23], [12, 23], [12, 17]])


def test_nose_points_along_the_height_axis():
    np.testing.assert_allclose(
        heading_vectors(np.array([0.0, np.pi / 2])), [[0, 1], [1, 0]], atol=1e-12
    )


def test_iou_of_known_overlaps():
    box = [50.0, 50.0, 0.3, 10.0, 20.0]
    shifted = [55.0, 50.0, 0.0, 10.0, 20.0]
    iou = rotated_iou(np.array([box, [50.0, 50.0, 0.0, 10.0, 20.0]]), np.array([box, shifted]))
    # Two 10x20 axis-aligned boxes offset by half their width share a third of their union.
    np.testing.assert_allclose(iou, [1.0, 100 / 300])


def test_yaw_plus_pi_is_the_same_box():
    boxes = generate_batch(200, np.random.default_rng(0), ship_probability=1.0)[1]
    boxes = boxes.astype(np.float64)
    flipped = boxes.copy()
    flipped[:, 2] += np.pi
    np.testing.assert_allclose(rotated_iou(boxes, flipped), 1.0, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(0, 200),
    st.floats(0, 200),
    st.floats(0, 2 * np.pi),
    st.floats(1, 40),
    st.floats(1, 80),
    st.floats(-10, 10),
    st.floats(-10, 10),
    st.floats(-1, 1),
)
def test_iou_is_symmetric_and_bounded(x, y, yaw, width, height, dx, dy, dyaw):
    a = np.array([[x, y, yaw, width, height]])
    b = np.array([[x + dx, y + dy, yaw + dyaw, width * 1.1, height * 0.9]])
    forward, backward = rotated_iou(a, b)[0], rotated_iou(b, a)[0]
    assert 0 <= forward <= 1
    assert forward == pytest.approx(backward, abs=1e-12)


def test_official_per_sample_semantics():
    box = [100.0, 100.0, 1.0, 20.0, 30.0]
    labels = np.array([box, NAN_ROW, box, NAN_ROW])
    predictions = np.array([box, box, NAN_ROW, NAN_ROW])  # TP, FP, FN, TN
    values = sample_ious(predictions, labels)
    np.testing.assert_allclose(values[:3], [1.0, 0.0, 0.0])
    assert np.isnan(values[3])
    # The true negative is left out: 1 hit out of 3 scored samples.
    assert ap_at_iou(predictions, labels) == pytest.approx(1 / 3)
    assert mean_iou(predictions, labels) == pytest.approx(1 / 3)


def test_score_is_strictly_above_the_threshold():
    labels = np.array([[100.0, 100.0, 0.0, 10.0, 10.0]])
    # Shifting a 10x10 box by 10 * 3/17 gives IoU exactly 0.7 ... up to rounding.
    shift = 10 * (1 - 0.7) / (1 + 0.7)
    predictions = labels + [[shift, 0, 0, 0, 0]]
    assert sample_ious(predictions, labels)[0] == pytest.approx(0.7)
    assert ap_at_iou(predictions, labels, threshold=0.69) == 1.0
    assert ap_at_iou(predictions, labels, threshold=0.71) == 0.0


def test_ranked_average_precision_rewards_confident_hits():
    box = [100.0, 100.0, 1.0, 20.0, 30.0]
    far = [30.0, 30.0, 1.0, 20.0, 30.0]
    labels = np.array([box, box, NAN_ROW])
    predictions = np.array([box, far, box])
    good = ranked_average_precision(np.array([0.9, 0.2, 0.1]), predictions, labels)
    bad = ranked_average_precision(np.array([0.1, 0.2, 0.9]), predictions, labels)
    assert good == pytest.approx(0.5)  # precision 1 at recall 1/2; the other ship is never hit
    assert bad < good


@pytest.mark.parametrize(
    ("predictions", "labels", "message"),
    [
        (np.zeros((3, 4)), np.zeros((3, 5)), "predictions must have shape"),
        (np.zeros((3, 5)), np.zeros((2, 5)), "same number of samples"),
        (np.array([[1.0, np.nan, 0, 0, 0]]), np.zeros((1, 5)), "mixes NaN"),
        (np.array([[1.0, np.inf, 0, 0, 0]]), np.zeros((1, 5)), "infinite"),
        ([["a"] * 5], np.zeros((1, 5)), "numeric"),
    ],
)
def test_scoring_rejects_bad_input(predictions, labels, message):
    with pytest.raises(ValueError, match=message):
        ap_at_iou(predictions, labels)


def test_scoring_ten_thousand_predictions_matches_the_official_scorer():
    if find_problem_statement() is None:
        pytest.skip("the official challenge statement is not beside this checkout")
    official = load_official_helpers()
    rng = np.random.default_rng(0)
    count = 10_000
    labels = np.concatenate([generate_batch(1000, rng)[1] for _ in range(count // 1000)])
    labels = labels.astype(np.float64)
    predictions = labels + rng.normal(0, [3, 3, 0.2, 2, 3], size=labels.shape)
    predictions[rng.random(count) < 0.1] = np.nan
    expected = [official.score_iou(p, t) for p, t in zip(predictions, labels, strict=True)]
    expected = np.array([np.nan if value is None else value for value in expected])
    assert len(expected) == count
    np.testing.assert_allclose(sample_ious(predictions, labels), expected, rtol=0, atol=1e-12)
    scored = expected[~np.isnan(expected)]
    assert ap_at_iou(predictions, labels) == pytest.approx(np.mean(scored > 0.7), abs=1e-12)


def test_best_presence_threshold_balances_misses_and_false_boxes():
    box = [100.0, 100.0, 1.0, 20.0, 30.0]
    labels = np.array([box, box, NAN_ROW, NAN_ROW])
    raw = np.array([box, box, box, box])
    # Ships get 0.9 and 0.4; empty images 0.3 and 0.6.
    presence = np.array([0.9, 0.4, 0.3, 0.6])
    threshold, score = best_presence_threshold(
        presence, raw, labels, np.array([0.2, 0.35, 0.5, 0.7])
    )
    # 0.35 boxes both ships but one empty image (2/3); 0.5 and 0.7 miss a ship (1/2 or 1/2).
    assert threshold == 0.35 and score == pytest.approx(2 / 3)
    # The chosen threshold's score agrees with the official score of the thresholded boxes.
    boxes = np.where((presence >= threshold)[:, None], raw, np.nan)
    assert ap_at_iou(boxes, labels) == pytest.approx(score)
    from spaceship_utils.core.metrics import scores_by_presence_threshold

    thresholds, scores = scores_by_presence_threshold(presence, raw, labels)
    assert len(thresholds) == len(scores) == 91 and scores.max() == pytest.approx(2 / 3)


def test_heading_accuracy_counts_the_nose_only_on_hits():
    from spaceship_utils.core.metrics import heading_accuracy

    labels = np.array(
        [
            [100.0, 100.0, 0.5, 20.0, 30.0],
            [50.0, 60.0, 1.0, 25.0, 40.0],
            [70.0, 70.0, 2.0, 25.0, 40.0],
            [np.nan] * 5,
        ]
    )
    predictions = labels.copy()
    predictions[1, 2] += np.pi  # same rectangle, nose reversed: a hit, heading wrong
    predictions[2, 0] += 60.0  # far off: not a hit, its heading is not judged
    predictions[3] = np.nan
    share, hits = heading_accuracy(predictions, labels)
    assert hits == 2 and share == 0.5
    assert np.isnan(heading_accuracy(np.full((1, 5), np.nan), labels[:1])[0])
    with pytest.raises(ValueError):
        heading_accuracy(predictions[:2], labels)


def test_true_parts_show_where_the_score_is_lost():
    from spaceship_utils.core.metrics import median_box_errors, scores_with_true_parts

    labels = np.array([[100.0, 100.0, 0.5, 20.0, 30.0]] * 3 + [NAN_ROW])
    predictions = labels.copy()
    predictions[0, 0] += 15.0  # a centre far off
    predictions[1, 2] += np.pi / 4  # a turned box
    predictions[2] = np.nan  # a miss
    scores = scores_with_true_parts(predictions, labels)
    assert scores["as predicted"] == 0.0
    assert scores["true centre"] == pytest.approx(1 / 3) and scores["true axis"] == 1 / 3
    assert scores["true centre and axis"] == pytest.approx(2 / 3)  # the miss stays a miss
    assert scores["true size"] == 0.0
    errors = median_box_errors(predictions, labels)
    assert errors["centre (px)"] == pytest.approx(7.5) and errors["axis (degrees)"] == 22.5
    nothing_drawn = median_box_errors(np.full((2, 5), np.nan), labels[:2])
    assert list(nothing_drawn) == list(errors) and np.isnan(list(nothing_drawn.values())).all()


def test_axis_error_percentiles_show_the_tail_and_ignore_the_nose():
    from spaceship_utils.core.metrics import axis_error_percentiles, axis_errors_degrees

    labels = np.array([[100.0, 100.0, 0.5, 20.0, 30.0]] * 5 + [NAN_ROW])
    predictions = labels.copy()
    predictions[:5, 2] += np.radians([1.0, 2.0, 3.0, 40.0, 180.0 + 4.0])  # nose turned: 4°
    predictions[5] = [50.0, 50.0, 0.0, 10.0, 10.0]  # a box on an empty image: no error
    errors = axis_error_percentiles(predictions, labels, percents=(50, 100))
    assert errors == pytest.approx({"50 %": 3.0, "100 %": 40.0})
    each = axis_errors_degrees(predictions, labels)
    np.testing.assert_allclose(each[:5], [1.0, 2.0, 3.0, 40.0, 4.0])
    assert np.isnan(each[5])
    nothing_drawn = axis_error_percentiles(np.full((2, 5), np.nan), labels[:2])
    assert list(nothing_drawn) == ["50 %", "80 %", "90 %", "95 %"]
    assert np.isnan(list(nothing_drawn.values())).all()


def test_iou_bands_count_scored_samples_and_leave_true_negatives_out():
    from spaceship_utils.core.metrics import counts_by_iou_band

    ious = np.array([0.0, 0.0, 0.3, 0.5, 0.6, 0.7, 0.71, 0.9, np.nan])
    counts = counts_by_iou_band(ious)
    assert counts == {"0": 2, "0 to 0.5": 2, "0.5 to 0.7": 2, "above 0.7": 2}
    assert counts["above 0.7"] / sum(counts.values()) == ap_at_iou_from_ious(ious)
    with pytest.raises(ValueError, match="edges"):
        counts_by_iou_band(ious, edges=(0.7, 0.5))
    with pytest.raises(ValueError, match="ious"):
        counts_by_iou_band(np.array([1.5]))


def ap_at_iou_from_ious(ious):
    """The official score from per-sample values: hits over scored samples."""
    scored = ious[~np.isnan(ious)]
    return float(np.mean(scored > 0.7))
