"""Tests of the one rule that keeps a box among candidates, and of the refined detector's
settings (a variant is `with_settings`, checked again)."""

import numpy as np
import pytest

from spaceship_utils.detection.candidates import chosen_candidates, judged_scores
from spaceship_utils.detection.refined import RefinedDetectorPipeline


def _candidates(count: int, images: int) -> np.ndarray:
    """Candidate c of image i has x = 10 c + i, so the box kept names its candidate."""
    boxes = np.zeros((count, images, 5)) + [0.0, 100.0, 0.0, 20.0, 30.0]
    boxes[..., 0] = 10 * np.arange(count)[:, None] + np.arange(images)
    return boxes


def test_the_best_scored_candidate_is_kept_the_earliest_on_a_tie():
    scores = np.array([[0.2, 0.9, 0.5], [0.7, 0.9, 0.1], [0.7, 0.3, 0.5]])
    boxes, kept = chosen_candidates(_candidates(3, 3), scores)
    np.testing.assert_array_equal(boxes[:, 0], [10 + 0, 0 + 1, 0 + 2])
    np.testing.assert_array_equal(kept, [0.7, 0.9, 0.5])


def test_an_image_not_restarted_keeps_its_first_candidate():
    scores = np.array([[0.2, 0.2], [0.9, 0.9]])
    boxes, kept = chosen_candidates(_candidates(2, 2), scores, restarted=np.array([True, False]))
    np.testing.assert_array_equal(boxes[:, 0], [10, 1])
    np.testing.assert_array_equal(kept, [0.9, 0.2])


def test_with_an_outline_weight_the_fitted_outline_can_outweigh_the_score():
    scores = np.array([[0.9], [0.8]])
    log_ratios = np.array([[0.0], [30.0]])  # the second candidate's outline fits far better
    assert chosen_candidates(_candidates(2, 1), scores)[0][0, 0] == 0
    boxes, kept = chosen_candidates(_candidates(2, 1), scores, log_ratios, outline_weight=0.05)
    assert boxes[0, 0] == 10 and kept[0] == 0.8  # the verifier's score of the box kept
    judged = judged_scores(scores, log_ratios, 0.05)
    assert judged[1, 0] > judged[0, 0]


def test_a_variant_shares_the_networks_and_changes_only_what_it_names():
    detector, refiner, verifier = object(), object(), object()
    model = RefinedDetectorPipeline(detector, refiner, verifier=verifier, passes=3)
    variant = model.with_settings(outline_weight=0.2, verifier=None)
    assert variant.network is detector and variant.refiner is refiner and variant.verifier is None
    assert (variant.passes, variant.outline_weight) == (3, 0.2)
    assert model.outline_weight is None and model.verifier is verifier  # the model unchanged


def test_a_variant_is_checked_like_a_new_pipeline():
    model = RefinedDetectorPipeline(None, None)
    with pytest.raises(ValueError, match="restart_below"):
        model.with_settings(restart_below=1.5)
    with pytest.raises(TypeError, match="views must be True or False"):
        model.with_settings(views=1)
    with pytest.raises(TypeError, match="not a setting of a refined detector: pases"):
        model.with_settings(pases=2)


def test_a_setting_cannot_be_changed_in_place():
    model = RefinedDetectorPipeline(None, None)
    with pytest.raises(AttributeError, match=r"with_settings\(passes=...\)"):
        model.passes = 2
    assert model.passes == model.settings.passes
