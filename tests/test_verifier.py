import numpy as np
import pytest

from spaceship_utils.core.geometry import box_corners, rotated_iou, wrap_angle
from spaceship_utils.data.generator import generate_batch
from spaceship_utils.detection.presence import vote_can_reach
from spaceship_utils.networks.refiner import build_refiner
from spaceship_utils.networks.verifier import (
    TRUNK_LAYERS,
    build_verifier,
    copy_refiner_trunk,
    start_verifier_from,
    verification_targets,
    verifier_proposals,
)
from tests.helpers import generated


@pytest.fixture(scope="module")
def batch():
    return generated(64, seed=5)


def test_boxes_to_judge_sit_near_ships_and_on_empty_images(batch):
    _, labels = batch
    ships = ~np.isnan(labels[:, 0])
    assert 0 < ships.sum() < len(labels)  # the batch has both kinds
    boxes = verifier_proposals(labels, np.random.default_rng(0))
    assert np.isfinite(boxes).all()
    misses = np.hypot(*(boxes[ships, :2] - labels[ships, :2]).T)
    assert np.median(misses) < 6  # near the ship: small and refiner-sized errors
    # An empty image gets the size of a ship of the batch, anywhere in the image.
    sizes = {tuple(size) for size in labels[ships, 3:]}
    assert all(tuple(size) in sizes for size in boxes[~ships, 3:])
    assert ((boxes[:, :2] >= 0) & (boxes[:, :2] <= 199)).all()
    # A batch without a ship (small batches have them) gets ship-sized boxes anyway.
    made_up = verifier_proposals(np.full((3, 5), np.nan), np.random.default_rng(0))
    assert np.isfinite(made_up).all() and ((made_up[:, 3] >= 18) & (made_up[:, 3] < 37)).all()


def test_about_half_the_ship_boxes_to_judge_score(batch):
    _, labels = batch
    rng = np.random.default_rng(1)
    ships = labels[~np.isnan(labels[:, 0])]
    boxes = verifier_proposals(np.repeat(ships, 20, axis=0), rng)
    share = np.mean(rotated_iou(boxes, np.repeat(ships, 20, axis=0)) > 0.7)
    assert 0.35 < share < 0.75  # both answers are common: the verifier learns both


def test_a_box_scores_when_its_iou_with_a_ship_passes_0_7():
    truth = np.array([[100.0, 100.0, 0.3, 20.0, 40.0]] * 3 + [[np.nan] * 5])
    boxes = truth.copy()
    boxes[1, 0] += 3.0  # a little off: IoU about 0.74
    boxes[2, 2] += 0.6  # 34° off the axis
    boxes[3] = [50.0, 50.0, 0.0, 20.0, 40.0]  # a box on an empty image
    assert rotated_iou(boxes[1:2], truth[1:2])[0] > 0.7
    targets = verification_targets(boxes, truth)
    assert targets.shape == (4, 1) and targets.dtype == np.float32
    assert targets[:, 0].tolist() == [1.0, 1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="no NaN rows in boxes"):
        verification_targets(truth, truth)


def test_a_verifier_starts_from_the_refiners_trunk(tmp_path):
    refiner = build_refiner()
    for variable in refiner.trainable_variables:
        variable.assign(np.random.default_rng(2).normal(size=variable.shape))
    refiner.save_weights(tmp_path / "refiner.weights.h5")
    verifier = build_verifier()
    head = verifier.get_layer("score").get_weights()
    copy_refiner_trunk(verifier, tmp_path / "refiner.weights.h5")
    for name in TRUNK_LAYERS:
        for mine, its in zip(
            verifier.get_layer(name).get_weights(),
            refiner.get_layer(name).get_weights(),
            strict=True,
        ):
            np.testing.assert_array_equal(mine, its)
    for mine, fresh in zip(verifier.get_layer("score").get_weights(), head, strict=True):
        np.testing.assert_array_equal(mine, fresh)  # its own output layer
    scores = verifier.predict(np.zeros((3, 64, 64, 2), np.float32), verbose=0)
    assert scores.shape == (3, 1) and ((scores >= 0) & (scores <= 1)).all()


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # the full-rank file
def test_a_low_rank_verifier_starts_from_a_refiner_of_its_rank(tmp_path):
    refiner = build_refiner(rank=16)
    for variable in refiner.trainable_variables:
        variable.assign(np.random.default_rng(3).normal(size=variable.shape))
    refiner.save_weights(tmp_path / "refiner.weights.h5")
    verifier = build_verifier(rank=16)
    start_verifier_from(verifier, tmp_path / "refiner.weights.h5")
    for name in (*TRUNK_LAYERS, "dense_basis"):
        for mine, its in zip(
            verifier.get_layer(name).get_weights(),
            refiner.get_layer(name).get_weights(),
            strict=True,
        ):
            np.testing.assert_array_equal(mine, its)
    build_refiner().save_weights(tmp_path / "full.weights.h5")
    with pytest.raises(ValueError, match=r"full.weights.h5 holds neither .* of rank 16"):
        start_verifier_from(build_verifier(rank=16), tmp_path / "full.weights.h5")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Skipping nested container")  # the wrong file, last
def test_a_verifier_run_starts_from_a_refiner_run_and_joins_the_pipeline(tmp_path):
    from spaceship_utils.detection.refined import RefinedDetectorPipeline
    from spaceship_utils.pretrained import load_refined_detector_run
    from spaceship_utils.training.batches import validation_data
    from spaceship_utils.training.loop import train_model
    from spaceship_utils.training.recipes import TrainingConfig
    from spaceship_utils.training.runs import RunDirectoryError

    small = {"epochs": 1, "steps_per_epoch": 1, "batch_size": 4, "validation_samples": 8}
    train_model(TrainingConfig.recipe("refiner", **small), tmp_path / "refiner", verbose=False)
    start = str(tmp_path / "refiner" / "final.weights.h5")
    config = TrainingConfig.recipe("verifier", initial_weights=start, **small)
    outcome = train_model(config, tmp_path / "verifier", verbose=False)
    assert outcome.finished and 0 <= outcome.history["val_accuracy"][0] <= 1
    windows, targets, _ = validation_data("verifier", 8, config.seed)
    assert windows.shape == (8, 64, 64, 2) and set(np.unique(targets)) <= {0.0, 1.0}

    detector = TrainingConfig.recipe(
        "detector", **small, detector_options={"width": 8, "dilations": [1]}
    )
    train_model(detector, tmp_path / "detector", verbose=False)
    model = load_refined_detector_run(
        tmp_path / "detector",
        tmp_path / "refiner",
        verifier_run=tmp_path / "verifier",
        presence_threshold=0.0,
    )
    assert isinstance(model, RefinedDetectorPipeline) and model.verifier is not None
    assert model.network_passes == (1, model.passes, 1)  # one view of each window
    boxes = model.predict(generate_batch(2, np.random.default_rng(4))[0])
    assert boxes.shape == (2, 5) and np.isfinite(boxes).all()  # threshold 0
    wrong_start = TrainingConfig.recipe(
        "verifier", initial_weights=str(tmp_path / "detector" / "final.weights.h5"), **small
    )
    with pytest.raises(RunDirectoryError, match="finished verifier or refiner run"):
        train_model(wrong_start, tmp_path / "wrong", verbose=False)


def test_a_restart_turns_the_axis_and_keeps_the_proposals_nose():
    from spaceship_utils.detection.restarts import nose_towards, turned_boxes

    box = np.array([[100.0, 100.0, 3.0, 20.0, 30.0]])
    eighth = turned_boxes(box, np.pi / 4)
    assert eighth[0, 2] == pytest.approx(wrap_angle(np.array(3.0 + np.pi / 4)))
    assert eighth[0, :2].tolist() == [100.0, 100.0] and eighth[0, 3:].tolist() == [20.0, 30.0]
    assert rotated_iou(eighth, box)[0] < 0.7
    # A box whose yaw came back more than a quarter turn from the proposal's turns round:
    # the same rectangle, with the proposal's nose.
    back = turned_boxes(box, 0.8 * np.pi)
    kept = nose_towards(back, box)
    assert kept[0, 2] == pytest.approx(wrap_angle(np.array(3.0 - 0.2 * np.pi)))
    assert rotated_iou(kept, back)[0] == pytest.approx(1.0)
    np.testing.assert_allclose(nose_towards(eighth, box), eighth)  # near enough already
    for turn in (-0.1, 0.1, -1.5, 1.5, 2 * np.pi - 0.1):  # either side of the reference
        near = turned_boxes(box, turn)
        np.testing.assert_allclose(nose_towards(near, box), near)


def test_a_shifted_start_moves_along_the_boxs_own_sides():
    from spaceship_utils.detection.restarts import RESTART_SHIFTS, restart_starts, shifted_boxes

    box = np.array([[100.0, 80.0, 0.7, 20.0, 30.0]])
    corners = box_corners(box)[0]  # local (-w, -h), (-w, h), (w, h), (w, -h) halves
    forward = shifted_boxes(box, 15.0, 0.0)  # half the height: the middle of one end
    np.testing.assert_allclose(forward[0, :2], corners[1:3].mean(axis=0))
    aside = shifted_boxes(box, 0.0, 10.0)  # half the width: the middle of one side
    np.testing.assert_allclose(aside[0, :2], corners[2:4].mean(axis=0))
    np.testing.assert_allclose(aside[0, 2:], box[0, 2:])
    starts = restart_starts(box)
    assert len(starts) == 3 + len(RESTART_SHIFTS)
    moves = [np.hypot(*(start[0, :2] - box[0, :2])) for start in starts]
    assert moves[:3] == [0.0, 0.0, 0.0]  # the turns keep the centre
    np.testing.assert_allclose(moves[3:], [np.hypot(*move) for move in RESTART_SHIFTS])


@pytest.fixture
def restart_model(monkeypatch, batch):
    """A refined detector whose refiner moves every box 1 px down per pass and whose
    verifier likes one axis per image: image 0 (x = 50) the proposal turned by 45°, image 1
    (x = 150) the proposal as it is, though it likes a 135° turn even more, image 2
    (x = 100) a 45° turn, but the presence gate drops it. A start moved off the proposal
    scores as the proposal's axis does (the verifier reads the nearest image's likes). The
    detector's second guess lies 70 px below the proposal, nose back at 240°; the verifier
    scores any box that low `Verifier.second_guess` (0.1 on every image)."""
    from spaceship_utils.detection import refined

    proposals = np.array(
        [
            [50.0, 100.0, 0.0, 20.0, 30.0],
            [150.0, 100.0, 0.0, 20.0, 30.0],
            [100.0, 100.0, 0.0, 20.0, 30.0],
        ]
    )
    presence = np.array([1.0, 1.0, 0.2])
    liked = {
        50.0: {np.pi / 4: 0.95, 0.0: 0.3},
        150.0: {0.0: 0.8, 3 * np.pi / 4: 0.99},
        100.0: {np.pi / 4: 0.9, 0.0: 0.1},
    }

    def score(x, y, yaw):  # by axis: the nose does not matter
        image = min(liked, key=lambda centre: abs(centre - x))
        if y > 150:
            return Verifier.second_guess[image]
        likes = liked[image]
        same_axis = [s for axis, s in likes.items() if np.isclose(np.cos(2 * (yaw - axis)), 1)]
        return max(same_axis, default=0.1)

    class Refiner:
        def predict_on_batch(self, windows):
            return np.zeros((len(windows), 6))

    class Verifier:
        calls = []  # windows per call
        second_guess = dict.fromkeys(liked, 0.1)

        def predict_on_batch(self, windows):
            Verifier.calls.append(len(windows))
            boxes = windows[:, 0, 0, :]  # the window functions are patched to pass the boxes on
            return np.array([[score(x, y, yaw)] for x, y, yaw in boxes[:, :3]])

    images = batch[0][:3]

    def raw_predictions(self, chunk, batch_size):  # the detector's answers for these images
        rows = [np.flatnonzero((images == image).all(axis=(1, 2)))[0] for image in chunk]
        return proposals[rows], presence[rows]

    def second_peak_proposals(self, chunk, batch_size):
        first, _ = raw_predictions(self, chunk, batch_size)
        return first + [0.0, 70.0, 4 * np.pi / 3, 0.0, 0.0]

    from spaceship_utils.detection import refinement, restarts

    monkeypatch.setattr(refined.DetectorPipeline, "raw_predictions", raw_predictions)
    monkeypatch.setattr(restarts.Restarts, "second_peak_proposals", second_peak_proposals)
    passed_on = lambda images, boxes: boxes[:, None, None, :]  # noqa: E731
    monkeypatch.setattr(refinement, "crop_windows", passed_on)
    monkeypatch.setattr(restarts, "verifier_windows", passed_on)
    monkeypatch.setattr(
        refinement, "apply_refinement", lambda boxes, corrections: boxes + [0, 1, 0, 0, 0]
    )
    model = refined.RefinedDetectorPipeline(
        None, Refiner(), 0.5, passes=1, views=False, verifier=Verifier(), restart_below=0.5
    )
    return model, proposals, Verifier


def test_a_doubted_box_is_restarted_and_the_best_scored_start_kept(restart_model, batch):
    model, proposals, verifier = restart_model
    images = batch[0][:3]
    boxes = model.predict(images)
    # Restarted from the proposal (one pass: 1 px down), not from the refined box.
    np.testing.assert_allclose(boxes[0], [50.0, 101.0, np.pi / 4, 20.0, 30.0])
    np.testing.assert_allclose(boxes[1], proposals[1] + [0, 1, 0, 0, 0])  # trusted
    assert np.isnan(boxes[2]).all()  # no box drawn: not restarted either
    assert verifier.calls == [3, 8]  # the refined boxes, then image 0's eight restarts
    model = model.with_settings(restart_below=1.0)
    # Image 1's favourite axis, 135°, with the proposal's nose: yaw -45°.
    assert model.predict(images)[1, 2] == pytest.approx(wrap_angle(np.array(-np.pi / 4)))


def test_the_detectors_second_guess_wins_with_its_own_nose(restart_model, batch):
    model, proposals, verifier = restart_model
    verifier.second_guess[50.0] = 0.99  # image 0: better than its favourite turn (0.95)
    boxes = model.predict(batch[0][:3])
    # 70 px below the proposal, one pass 1 px down, and its nose still back: not turned
    # towards the proposal's, as the proposal's own starts are.
    np.testing.assert_allclose(boxes[0], [50.0, 171.0, 4 * np.pi / 3, 20.0, 30.0])
    np.testing.assert_allclose(boxes[1], proposals[1] + [0, 1, 0, 0, 0])  # still trusted


def test_the_restart_table_scores_what_the_pipeline_answers(restart_model, batch):
    from spaceship_utils.evaluation.restart_tables import (
        first_starts,
        restart_runs,
        restart_table,
        restarted_choice,
    )

    model, proposals, _ = restart_model
    images = batch[0][:3]
    runs = restart_runs(model, images)
    assert runs.boxes.shape == (9, 3, 5) and runs.scores.shape == (9, 3)
    in_chunks = restart_runs(model, images, chunk_size=2)
    np.testing.assert_array_equal(in_chunks.boxes, runs.boxes)
    np.testing.assert_array_equal(in_chunks.scores, runs.scores)
    np.testing.assert_array_equal(in_chunks.presence, runs.presence)
    for below in (0.0, 0.5, 1.0):
        model = model.with_settings(restart_below=below)
        chosen, restarted = restarted_choice(runs, below)
        np.testing.assert_allclose(chosen[:2], model.predict(images)[:2])
        assert (
            restarted.tolist()
            == {
                0.0: [False, False, False],
                0.5: [True, False, False],
                1.0: [True, True, False],  # never where the gate drops the box
            }[below]
        )
    labels = np.array([[50.0, 101.0, np.pi / 4, 20.0, 30.0], proposals[1], [np.nan] * 5])
    rows = restart_table(runs, labels, shown=(0.0, 0.5, 1.0)).splitlines()[2:]
    # restart below, images restarted, refiner windows per image, score
    assert [row.split() for row in rows[:3]] == [
        ["0.000", "0.000", "1.0", "0.5000"],
        ["0.500", "0.333", "3.7", "1.0000"],  # eight more windows on one image in three
        ["1.000", "0.667", "6.3", "0.5000"],  # image 1's favourite turn misses
    ]
    assert rows[3].split()[-3:] == ["0.667", "6.3", "1.0000"]  # the truth picks: both hit
    turns_only = first_starts(runs, 4)  # the first start and its three turns
    np.testing.assert_array_equal(turns_only.boxes, runs.boxes[:4])
    assert turns_only.scores.shape == (4, 3) and turns_only.first_windows == runs.first_windows
    rows = restart_table(turns_only, labels, shown=(1.0,)).splitlines()[2:]
    assert rows[0].split() == ["1.000", "0.667", "3.0", "0.5000"]
    with pytest.raises(ValueError, match="at most the 9 starts"):
        first_starts(runs, 10)
    model.verifier = None
    with pytest.raises(ValueError, match="no verifier"):
        restart_runs(model, images)


def test_the_verifier_votes_on_presence_with_its_score_of_the_box_kept(restart_model, batch):
    from spaceship_utils.detection.presence import gate_boxes
    from spaceship_utils.evaluation.restart_tables import (
        restart_runs,
        verifier_vote_table,
        voted_choice,
    )

    model, proposals, verifier = restart_model
    images = batch[0][:3]
    runs = restart_runs(model, images)
    assert runs.voters == 1  # no classifier: the detector alone votes before the verifier
    model = model.with_settings(verified_presence_threshold=0.5)
    details = model.predict_details(images)
    # Image 0 restarted (0.3 -> 0.95), image 1 trusted (0.8); image 2's presence, 0.2, can
    # still reach 0.5 with a score of 1: restarted too (0.1 -> 0.9), and its box drawn.
    np.testing.assert_allclose(details.presence, [(1 + 0.95) / 2, (1 + 0.8) / 2, (0.2 + 0.9) / 2])
    np.testing.assert_allclose(details.boxes[2], [100.0, 101.0, np.pi / 4, 20.0, 30.0])
    assert verifier.calls[-2:] == [3, 16]  # two images restarted, eight starts each
    boxes, presence = voted_choice(runs, model.restart_below)
    np.testing.assert_allclose(presence, details.presence)
    np.testing.assert_allclose(gate_boxes(boxes, presence, 0.5), details.boxes)
    # 0.2 + 1 < 2 x 0.65: no restart, no box.
    model = model.with_settings(verified_presence_threshold=0.65)
    details = model.predict_details(images)
    assert verifier.calls[-2:] == [3, 8] and np.isnan(details.boxes[2]).all()
    assert details.presence[2] == pytest.approx((0.2 + 0.1) / 2)
    assert model.gate_threshold == 0.65
    # No vote: the detector's gate at 0.5 again.
    model = model.with_settings(verified_presence_threshold=None)
    assert model.gate_threshold == 0.5 and np.isnan(model.predict(images)[2]).all()
    labels = np.array([[50.0, 101.0, np.pi / 4, 20.0, 30.0], proposals[1], [np.nan] * 5])
    rows = [row.split() for row in verifier_vote_table(runs, labels, 0.5).splitlines()[2:]]
    # threshold, images restarted, empty images boxed, ships without a box, score. Without
    # the verifier, at the model's 0.5, image 2 gets no box and only image 0 is restarted;
    # with it, the best threshold (0.56) keeps image 2's box off but restarts it too.
    assert rows[0] == ["detector", "alone", "0.50", "0.333", "0", "0", "1.0000"]
    assert rows[1][-5:] == ["0.56", "0.667", "0", "0", "1.0000"]
    assert rows[2][-1] == "1.0000"


def test_with_a_classifier_three_probabilities_vote(restart_model, batch):
    model, _, _ = restart_model

    class Classifier:  # 0.6 on every image
        def predict_on_batch(self, inputs):
            return np.full((len(inputs), 1), 0.6)

    model.classifier = Classifier()
    model = model.with_settings(verified_presence_threshold=0.52)
    assert model.vote.voters == 2
    details = model.predict_details(batch[0][:3])
    # Detector 1, 1, 0.2; classifier 0.6; the verifier's scores of the boxes kept.
    expected = [(1 + 0.6 + 0.95) / 3, (1 + 0.6 + 0.8) / 3, (0.2 + 0.6 + 0.9) / 3]
    np.testing.assert_allclose(details.presence, expected)
    assert not np.isnan(details.boxes).any()  # image 2: (0.2 + 0.6) / 2 = 0.4, restarted
    # A score of 1 lifts a two-way mean of 0.28 to (2 x 0.28 + 1) / 3 = 0.52 exactly.
    reach = vote_can_reach(np.array([0.28, 0.279]), 2, 0.52)
    assert reach.tolist() == [True, False]
    with pytest.raises(ValueError, match="voters"):
        vote_can_reach(np.ones(2), 0, 0.5)


@pytest.mark.slow
def test_the_shipped_verifier_sees_a_box_too_wide_or_too_narrow():
    from spaceship_utils import load_pretrained

    images, labels = generate_batch(64, np.random.default_rng(7), ship_probability=1.0)
    model = load_pretrained("refined_detector")
    true_scores = model.restarts.verifier_scores(images, labels)
    for factor in (1.5, 1 / 1.5):  # IoU 0.67 with the true box: it does not score
        resized = labels.astype(np.float64)
        resized[:, 3] *= factor
        assert (
            np.median(model.restarts.verifier_scores(images, resized))
            < 0.5
            < np.median(true_scores)
        )


@pytest.fixture
def outline_model(restart_model, monkeypatch):
    """The restart model with fitted outlines joining its candidates: the fake fit moves
    every box 8 px right, and its log ratio is 10 for a box near x = 50, 0 elsewhere; the
    verifier scores the fit of image 0's favourite axis (45°, at x = 58) 0.97, above the
    restarts' best 0.95."""
    from spaceship_utils.detection import restarts

    model, proposals, _ = restart_model
    fits = []

    def fitted_outline_boxes(images, starts, line_free=False):
        fits.append((*starts.shape, line_free))
        moved = starts + [8.0, 0, 0, 0, 0]
        return moved, np.where(np.abs(starts[..., 0] - 50) < 5, 10.0, 0.0)

    monkeypatch.setattr(restarts, "fitted_outline_boxes", fitted_outline_boxes)
    from spaceship_utils.evaluation import outline_tables

    monkeypatch.setattr(outline_tables, "fitted_outline_boxes", fitted_outline_boxes)
    scores_of = model.verifier.predict_on_batch

    def predict_on_batch(windows):
        scores = scores_of(windows)
        boxes = windows[:, 0, 0, :]
        liked = np.isclose(boxes[:, 0], 58.0) & np.isclose(np.cos(2 * boxes[:, 2] - np.pi / 2), 1)
        scores[liked, 0] = 0.97
        return scores

    model.verifier.predict_on_batch = predict_on_batch
    model = model.with_settings(outline_weight=0.05)
    return model, proposals, fits


def test_fitted_outlines_join_the_restarts_and_the_judge_picks_among_all(outline_model, batch):
    model, proposals, fits = outline_model
    images = batch[0][:3]
    boxes = model.predict(images)
    # Image 0 restarted: nine starts and their nine fits; the fit of the proposal's 45°
    # turn, 8 px right, scores 0.97 and wins. Image 1 is trusted, image 2 never boxed.
    assert fits == [(9, 1, 5, False)]
    np.testing.assert_allclose(boxes[0], [58.0, 101.0, np.pi / 4, 20.0, 30.0])
    np.testing.assert_allclose(boxes[1], proposals[1] + [0, 1, 0, 0, 0])
    candidates, scores, log_ratios = model.restarts.candidates_to_judge(
        images[:1], np.zeros((2, 1, 5)) + [50.0, 0, 0, 20, 30], np.array([[0.5], [0.5]])
    )
    assert candidates.shape == (4, 1, 5) and scores.shape == log_ratios.shape == (4, 1)
    np.testing.assert_allclose(log_ratios[:, 0], np.full(4, 10.0))
    # No fits: the verifier alone picks among the starts.
    model = model.with_settings(outline_weight=None)
    np.testing.assert_allclose(model.predict(images)[0], [50.0, 101.0, np.pi / 4, 20.0, 30.0])
    assert len(fits) == 2  # the two calls above, none since


def test_the_outline_table_scores_what_the_pipeline_answers(outline_model, batch):
    from spaceship_utils.detection.presence import gate_boxes
    from spaceship_utils.evaluation.outline_tables import (
        outline_choice,
        outline_judge_table,
        outline_runs,
    )
    from spaceship_utils.evaluation.restart_tables import restart_runs

    model, proposals, _ = outline_model
    images = batch[0][:3]
    runs = restart_runs(model, images)
    outlines = outline_runs(model, images, runs)
    assert outlines.restarted.tolist() == [True, False, True]  # scored below 0.5 first
    assert np.isnan(outlines.boxes[:, 1]).all() and (outlines.scores[:, 1] == 0).all()
    boxes, presence = outline_choice(runs, outlines, model.outline_weight)
    np.testing.assert_allclose(gate_boxes(boxes, presence, 0.5)[:2], model.predict(images)[:2])
    labels = np.array([[58.0, 101.0, np.pi / 4, 20.0, 30.0], proposals[1], [np.nan] * 5])
    rows = [row.split() for row in outline_judge_table(runs, outlines, labels).splitlines()[2:]]
    assert [row[0] for row in rows] == ["restarts", "with", "with", "with", "with", "the"]
    assert rows[0][-1] == "0.5000"  # the best start, 8 px off, misses image 0's ship
    assert [row[-1] for row in rows[1:]] == ["1.0000"] * 5  # its fit hits, whatever the weight


def test_variants_share_their_work_and_answer_as_each_one_alone(outline_model, batch):

    from spaceship_utils.detection.variants import variant_predictions

    model, _, _ = outline_model
    images = batch[0][:3]
    settings = {  # verifier kept, verified_presence_threshold, outline_weight
        "refined": (False, None, None),
        "restarts": (True, None, None),
        "vote": (True, 0.5, None),
        "fits": (True, 0.5, 0.05),
        "fits, no vote": (True, None, 0.05),
        "line-free fits": (True, 0.5, 0.1),
    }
    variants = {}
    for name, (verifier, threshold, weight) in settings.items():
        variants[name] = model.with_settings(
            verifier=model.verifier if verifier else None,
            verified_presence_threshold=threshold,
            outline_weight=weight,
            line_free_fits=name == "line-free fits",
        )
    _, _, fits = outline_model
    shared = variant_predictions(variants, images)
    # one fit of each kind of the two images any variant restarts
    assert fits == [(9, 2, 5, False), (9, 2, 5, True)]
    for name, variant in variants.items():
        alone = variant.predict_details(images)
        for field in ("boxes", "presence", "raw_boxes"):
            np.testing.assert_allclose(getattr(shared[name], field), getattr(alone, field))
    # the fits change image 0's box, the vote draws image 2's: the variants do differ
    assert shared["fits"].boxes[0, 0] == pytest.approx(58.0) != shared["vote"].boxes[0, 0]
    assert np.isnan(shared["restarts"].boxes[2]).all()
    assert not np.isnan(shared["vote"].boxes[2]).any()
    assert {len(p.boxes) for p in variant_predictions(variants, images[:0]).values()} == {0}


def test_variants_must_share_networks_and_passes(outline_model):

    from spaceship_utils.detection.pipelines import BaselinePipeline
    from spaceship_utils.detection.variants import variant_predictions

    model, _, _ = outline_model
    other = model.with_settings(passes=2)
    with pytest.raises(ValueError, match="'other' has another passes"):
        variant_predictions({"model": model, "other": other}, np.zeros((1, 200, 200)))
    other = model.with_settings(restart_below=0.9)
    with pytest.raises(ValueError, match="another restart_below"):
        variant_predictions({"model": model, "other": other}, np.zeros((1, 200, 200)))
    with pytest.raises(TypeError, match="not a refined detector"):
        variant_predictions({"seed": BaselinePipeline(None, None)}, np.zeros((1, 200, 200)))
    with pytest.raises(ValueError, match="variants is empty"):
        variant_predictions({}, np.zeros((1, 200, 200)))


def test_the_line_vote_decides_presence_where_the_three_way_vote_is_in_doubt(
    outline_model, batch, monkeypatch
):
    from spaceship_utils.detection import presence, refined
    from spaceship_utils.detection.line_vote import LineVote
    from spaceship_utils.detection.variants import variant_predictions

    model, _, _ = outline_model
    images = batch[0][:3]
    asked = []

    def line_free_evidence(images, boxes):  # strong evidence left of x = 90, none right
        asked.append(len(boxes))
        return np.where(boxes[:, 0] < 90, 100.0, -100.0)

    monkeypatch.setattr(presence, "line_free_evidence", line_free_evidence)

    class Classifier:  # 0.6 on every image
        def predict_on_batch(self, inputs):
            return np.full((len(inputs), 1), 0.6)

    model.classifier = Classifier()
    model = model.with_settings(verified_presence_threshold=0.52)
    voted = model
    # The regression reads the evidence alone: probability sigmoid(clip(evidence) / 50).
    model = model.with_settings(line_vote=LineVote((0.0, 0.0, 1.0), 0.0, (0.3, 0.75)))
    details = model.predict_details(images)
    # Three-way votes: image 0 (1 + 0.6 + 0.97) / 3 and image 1 (1 + 0.6 + 0.8) / 3, above
    # the band: the vote decides; image 2 (0.2 + 0.6 + 0.9) / 3 = 0.567, in the band: the
    # line vote, whose evidence (-100, clipped to -50) says no ship: its probability
    # sigmoid(-1), mapped into [0.3, 0.52) below the gate.
    line = 0.3 + (0.52 - 0.3) * (1 / (1 + np.exp(1.0))) / 0.52
    np.testing.assert_allclose(details.presence, [2.57 / 3, 2.4 / 3, line], rtol=1e-9)
    assert asked == [1] and np.isnan(details.boxes[2]).all()
    assert not np.isnan(voted.predict(images)[2]).any()  # the vote alone draws it
    shared = variant_predictions({"vote": voted, "line vote": model}, images)
    for name, variant in (("vote", voted), ("line vote", model)):
        alone = variant.predict_details(images)
        for field in ("boxes", "presence", "raw_boxes"):
            np.testing.assert_allclose(getattr(shared[name], field), getattr(alone, field))
    # Outside the band: refused, not silently odd.
    model = model.with_settings(verified_presence_threshold=0.9)
    with pytest.raises(ValueError, match="must lie inside the line vote's band"):
        model.predict(images[1:2])  # an image outside the band too
    model = model.with_settings(verified_presence_threshold=0.52)
    model.classifier = None
    with pytest.raises(ValueError, match="reads the classifier's vote"):
        model.predict(images)
    with pytest.raises(TypeError, match="line_vote must be a LineVote"):
        refined.RefinedDetectorPipeline(None, None, line_vote={"band": (0.3, 0.8)})
