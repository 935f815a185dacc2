import numpy as np
import pytest

from spaceship_utils.core.geometry import rotated_iou
from spaceship_utils.core.metrics import ap_at_iou
from spaceship_utils.data.generator import make_layers
from spaceship_utils.detection.candidates import fitted_outline_boxes
from spaceship_utils.detection.line_search import find_lines
from spaceship_utils.detection.line_vote import (
    EVIDENCE_SCALE,
    LineVote,
    fit_line_vote,
    line_free_evidence,
    line_vote_features,
    log_odds,
)
from spaceship_utils.detection.outline_fit import fit_outlines, fit_outlines_to_maps
from spaceship_utils.detection.presence import gate_boxes


def boxes_on_noise_lines(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Empty images (count, 200, 200) and a ship-sized box (count, 5) along each one's
    longest noise line, one edge on it."""
    empty = [make_layers(False) for _ in range(count)]
    boxes = []
    for layers in empty:
        x0, y0, x1, y1, _, _ = find_lines(layers.lines)[0]
        yaw = np.arctan2(y1 - y0, x1 - x0) - np.pi / 2
        boxes.append([(x0 + x1) / 2, (y0 + y1) / 2, yaw, 20.0, 30.0])
    return np.stack([layers.image for layers in empty]), np.array(boxes)


def test_the_outline_evidence_stays_on_ships_and_leaves_the_noise_lines():
    np.random.seed(5)
    ships = [make_layers(True) for _ in range(20)]
    images = np.stack([layers.image for layers in ships])
    labels = np.stack([layers.label for layers in ships])
    assert line_free_evidence(images, labels).min() > 25  # from the true box
    images, boxes = boxes_on_noise_lines(20)
    # With the lines in, a fitted outline borrows them; without, nothing is left to borrow.
    assert np.median(fit_outlines(images, boxes).log_ratios) > 15
    assert line_free_evidence(images, boxes).max() < 10
    assert line_free_evidence(images[:0], boxes[:0]).shape == (0,)


def test_line_free_fits_find_ships_and_no_outline_along_the_lines():
    np.random.seed(7)
    ships = [make_layers(True) for _ in range(12)]
    images = np.stack([layers.image for layers in ships])
    labels = np.stack([layers.label for layers in ships])
    starts = (labels + [2.0, -2.0, 0.05, 1.0, -1.0])[None]  # a start a little off
    plain, plain_ratios = fitted_outline_boxes(images, starts)
    free, free_ratios = fitted_outline_boxes(images, starts, line_free=True)
    assert free.shape == starts.shape and free_ratios.shape == (1, 12)
    assert np.median(rotated_iou(free[0], labels)) > 0.85  # the fit finds the ship
    images, boxes = boxes_on_noise_lines(12)
    _, plain_ratios = fitted_outline_boxes(images, boxes[None])
    _, free_ratios = fitted_outline_boxes(images, boxes[None], line_free=True)
    assert np.median(free_ratios) < 0 < 10 < np.median(plain_ratios)


def test_an_outline_fitted_to_a_map_follows_the_map_not_the_image():
    # A map that is 1 on the ship's own pixels and 0 elsewhere: the fit must move a start
    # that is a little off onto the ship, and its log ratio must count the pixels it covers.
    np.random.seed(6)
    layers = [make_layers(True) for _ in range(3)]
    labels = np.stack([layer.label for layer in layers])
    ship_maps = np.stack([(layer.ship > 0).astype(np.float32) for layer in layers])
    starts = labels + [2.0, -2.0, 0.05, 1.0, -1.0]
    fits = fit_outlines_to_maps(ship_maps, starts)
    assert rotated_iou(fits.boxes, labels).min() > 0.9
    ship_pixels = ship_maps.sum(axis=(1, 2))  # each counted once, plus the small priors
    np.testing.assert_allclose(fits.log_ratios, ship_pixels, rtol=0.03)
    # A neutral map holds no evidence: only the shape priors are left, near 0.
    neutral = fit_outlines_to_maps(np.zeros_like(ship_maps), starts)
    np.testing.assert_allclose(neutral.log_ratios, 0.0, atol=0.1)
    with pytest.raises(ValueError, match=r"maps must be \(N, 200, 200\)"):
        fit_outlines_to_maps(np.zeros((200, 200)), labels[:1])
    with pytest.raises(ValueError, match="NaN or infinite"):
        fit_outlines_to_maps(np.full((1, 200, 200), np.nan), labels[:1])


def test_the_features_are_two_log_odds_and_the_scaled_clipped_evidence():
    features = line_vote_features(
        np.array([0.5, 0.9, 1.0]), np.array([0.1, 0.5, 0.0]), np.array([25.0, -1e18, 400.0])
    )
    np.testing.assert_allclose(features[:, 0], [0.0, np.log(9.0), log_odds(1.0)])
    np.testing.assert_allclose(features[:, 1], [-np.log(9.0), 0.0, log_odds(0.0)])
    assert np.isfinite(features).all() and log_odds(1.0) == pytest.approx(np.log(1e6), rel=1e-3)
    np.testing.assert_allclose(features[:, 2], [25 / EVIDENCE_SCALE, -1.0, 3.0])
    with pytest.raises(ValueError, match="same number of samples"):
        line_vote_features(np.ones(2), np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="verifier_scores holds NaN"):
        line_vote_features(np.ones(2), np.array([0.5, np.nan]), np.ones(2))


def test_a_line_vote_checks_itself_and_travels_as_plain_numbers():
    vote = LineVote((1.0, 2.0, 3.0), -1.5, (0.3, 0.8))
    assert LineVote.from_dict(vote.as_dict()) == vote
    assert str(vote) == (
        "weights two-way vote 1.00, verifier score 2.00, line-free outline evidence 3.00; "
        "intercept -1.50; asked in [0.3, 0.8)"
    )
    assert vote.in_band(np.array([0.29, 0.3, 0.79, 0.8])).tolist() == [False, True, True, False]
    features = np.array([[0.0, 0.0, 0.5], [1.0, 1.0, 1.0]])
    np.testing.assert_allclose(vote.probability(features), 1 / (1 + np.exp([0.0, -4.5])))
    # Its presence: the probability mapped into the band, the gate's crossing kept.
    ladder = np.column_stack([np.zeros(7), np.zeros(7), np.linspace(-3, 3, 7)])
    probability, presence = vote.probability(ladder), vote.presence(ladder, 0.5)
    assert (np.diff(presence) > 0).all() and (0.3 <= presence).all() and (presence < 0.8).all()
    np.testing.assert_array_equal(presence >= 0.5, probability >= 0.5)
    np.testing.assert_allclose(vote.presence(np.array([[0.0, 0.0, 0.5]]), 0.5), [0.5])
    with pytest.raises(ValueError, match=r"gate threshold 0.9 must lie inside .* \(0.3, 0.8\)"):
        vote.presence(ladder, 0.9)
    with pytest.raises(ValueError, match="3 finite numbers"):
        LineVote((1.0, 2.0), 0.0)
    with pytest.raises(ValueError, match="3 finite numbers"):
        LineVote((1.0, np.nan, 2.0), 0.0)
    with pytest.raises(ValueError, match="intercept"):
        LineVote((1.0, 2.0, 3.0), np.inf)
    with pytest.raises(ValueError, match="low < high"):
        LineVote((1.0, 2.0, 3.0), 0.0, (0.8, 0.3))
    with pytest.raises(ValueError, match="band must be a number in"):
        LineVote((1.0, 2.0, 3.0), 0.0, (0.3, 1.5))
    with pytest.raises(ValueError, match="needs intercept"):
        LineVote.from_dict({"coefficients": [1, 2, 3], "band": [0.3, 0.8]})


def test_the_fitted_vote_meets_the_gate_where_the_regression_meets_its_threshold():
    rng = np.random.default_rng(0)
    count = 400
    has_ship = rng.random(count) < 0.8
    labels = np.where(has_ship[:, None], [100.0, 100.0, 0.3, 20.0, 30.0], np.nan)
    boxes = np.tile([100.0, 100.0, 0.3, 20.0, 30.0], (count, 1))
    boxes[rng.random(count) < 0.1, 0] += 30  # some ships' boxes miss
    evidence = np.where(has_ship, 40.0, -10.0) + rng.normal(0, 30, count)
    two_way = np.clip(np.where(has_ship, 0.7, 0.3) + rng.normal(0, 0.2, count), 0.01, 0.99)
    scores = np.clip(np.where(has_ship, 0.7, 0.3) + rng.normal(0, 0.3, count), 0.01, 0.99)
    three_way = (2 * two_way + scores) / 3
    features = line_vote_features(two_way, scores, evidence)
    vote, threshold, score = fit_line_vote(features, boxes, three_way, labels, 0.54)
    assert vote.coefficients[2] > 0  # more evidence, more likely a ship
    asked = vote.in_band(three_way)
    assert 0 < asked.sum() < count
    presence = np.where(asked, vote.presence(features, 0.54), three_way)
    assert ap_at_iou(gate_boxes(boxes, presence, 0.54), labels) == pytest.approx(score)
    without = ap_at_iou(gate_boxes(boxes, three_way, 0.54), labels)
    assert score >= without  # fitted and scored on the same images: here it does not lose
    unshifted = LineVote(vote.coefficients, vote.intercept + log_odds(threshold) - log_odds(0.54))
    np.testing.assert_array_equal(
        vote.probability(features) >= 0.54, unshifted.probability(features) >= threshold - 1e-12
    )
    with pytest.raises(ValueError, match=r"features must be \(N, 3\)"):
        fit_line_vote(features[:, :2], boxes, three_way, labels, 0.54)
    with pytest.raises(ValueError, match="must lie inside"):
        fit_line_vote(features, boxes, three_way, labels, 0.9)
    with pytest.raises(ValueError, match="a ship and images without"):
        ships = has_ship
        fit_line_vote(features[ships], boxes[ships], three_way[ships], labels[ships], 0.5)


def test_the_decided_presence_is_the_votes_in_its_band_and_the_three_way_vote_elsewhere():
    vote = LineVote((0.0, 0.0, 1.0), 0.0, (0.3, 0.8))
    three_way = np.array([0.1, 0.5, 0.9])
    features = np.array([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    decided = vote.decided_presence(three_way, features, 0.54)
    np.testing.assert_allclose(decided[[0, 2]], [0.1, 0.9])  # outside the band: unchanged
    assert decided[1] == pytest.approx(vote.presence(features[1:2], 0.54)[0])
