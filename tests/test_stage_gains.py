"""What each stage buys (evaluation.stage_gains): the variants, and the paired bootstrap."""

import numpy as np
import pytest

from spaceship_utils.evaluation.stage_gains import (
    LEFT_OUT,
    SHIPPED,
    paired_gain,
    scores_of,
    stage_gain_table,
)


def test_the_score_leaves_true_negatives_out_row_by_row():
    ious = np.array([[0.8, np.nan, 0.1, 0.9], [np.nan, np.nan, 0.75, 0.0]])
    np.testing.assert_allclose(scores_of(ious), [2 / 3, 1 / 2])


def test_a_pipeline_compared_with_itself_gains_nothing_with_no_spread():
    ious = np.random.default_rng(0).random(500)
    paired = paired_gain(ious, ious)
    assert (paired.gain, paired.standard_error, paired.samples_won, paired.samples_lost) == (
        0.0,
        0.0,
        0,
        0,
    )
    assert paired.resolved  # zero is at least two standard errors of zero


def test_the_paired_error_is_the_spread_of_the_difference_not_of_each_score():
    rng = np.random.default_rng(1)
    without = rng.random(4000)
    with_stage = without.copy()
    fixed = rng.choice(np.flatnonzero(without < 0.7), 80, replace=False)
    with_stage[fixed] = 0.9  # the stage turns 80 misses into hits and loses none
    paired = paired_gain(with_stage, without)
    assert paired.gain == pytest.approx(80 / 4000)
    assert (paired.samples_won, paired.samples_lost) == (80, 0)
    # A paired difference of 80 won samples spreads like sqrt(80) / 4000, far below the
    # binomial error of either score alone (about 0.007).
    assert paired.standard_error == pytest.approx(np.sqrt(80 * (1 - 80 / 4000)) / 4000, rel=0.15)
    assert paired.resolved


def test_a_gain_within_its_noise_is_not_resolved():
    rng = np.random.default_rng(2)
    without = rng.random(4000)
    with_stage = without.copy()
    hits, misses = np.flatnonzero(without > 0.7), np.flatnonzero(without <= 0.7)
    with_stage[rng.choice(hits, 20, replace=False)] = 0.1  # 20 hits lost
    with_stage[rng.choice(misses, 21, replace=False)] = 0.9  # 21 misses won
    paired = paired_gain(with_stage, without)
    assert abs(paired.gain) < 2 * paired.standard_error and not paired.resolved


def test_paired_samples_must_be_the_same_samples():
    with pytest.raises(ValueError, match="the same samples"):
        paired_gain(np.zeros(5), np.zeros(6))


def test_the_table_has_a_row_per_stage_left_out():
    rng = np.random.default_rng(3)
    shipped = rng.random(300)
    table = stage_gain_table(shipped, {stage: rng.random(300) for stage in LEFT_OUT})
    for stage in LEFT_OUT:
        assert stage in table
    assert "paired s.e." in table


def test_every_stage_left_out_is_a_pipeline_of_its_own():
    names = [name for name, _ in LEFT_OUT.values()]
    assert len(set(names)) == len(names) and SHIPPED not in names


def test_each_stage_has_a_plain_key_for_its_recorded_cost():
    from spaceship_utils.evaluation.stage_gains import LEFT_OUT, stage_key

    keys = [stage_key(stage) for stage in LEFT_OUT]
    assert keys == [
        "restarts",
        "verifier_vote",
        "outline_fits",
        "line_free_fits",
        "classifier_vote",
    ]
    with pytest.raises(ValueError, match="no stage 'gate'"):
        stage_key("gate")
