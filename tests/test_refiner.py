import json

import keras
import numpy as np
import pytest

from spaceship_utils.core.geometry import rotated_iou
from spaceship_utils.data.generator import generate_batch
from spaceship_utils.networks.refiner import build_refiner, refiner_loss
from spaceship_utils.networks.windows import (
    FLIP_SHARE,
    PROPOSAL_NOISE,
    TARGET_COLUMNS,
    WILD_SHARE,
    apply_refinement,
    correction_turns,
    crop_windows,
    perturbed_proposals,
    refinement_targets,
    window_frame_boxes,
)
from tests.helpers import generated, tiny_config


@pytest.fixture(scope="module")
def ships():
    return generated(64, seed=11, ships_only=True)


def test_an_unturned_window_is_a_plain_crop():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (1, 200, 200)).astype(np.float32)
    box = np.array([[100.5, 80.5, 0.0, 10.0, 20.0]])  # window side 1.5 * 20 = 30 px
    window = crop_windows(image, box, size=30)
    np.testing.assert_allclose(window[0, ..., 0], image[0, 66:96, 86:116], atol=1e-6)
    thresholded = np.where(image[0, 66:96, 86:116] >= 0.8, image[0, 66:96, 86:116], 0)
    np.testing.assert_allclose(window[0, ..., 1], thresholded, atol=1e-6)


def test_a_window_turns_with_the_box():
    image = np.zeros((1, 200, 200), dtype=np.float32)
    image[0, 100, 110] = 1.0  # 10 px to the right (+x) of the centre (100, 100)
    box = np.array([[100.0, 100.0, np.pi / 2, 10.0, 20.0]])
    window = crop_windows(image, box, size=30)[0, ..., 0]
    rows, columns = np.indices(window.shape)
    # At yaw pi/2 the nose points along +x (`geometry.heading_vectors`), the window's +v:
    # the pixel lands on the window's middle column (14.5), 10 px down from its middle row.
    assert window.sum() == pytest.approx(1.0)
    assert (rows * window).sum() == pytest.approx(14.5 + 10)
    assert (columns * window).sum() == pytest.approx(14.5)


def test_a_fitted_window_scales_each_axis_by_the_boxs_own_side():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (1, 200, 200)).astype(np.float32)
    box = np.array([[100.5, 80.5, 0.0, 20.0, 40.0]])  # 30 px across, 60 px along
    window = crop_windows(image, box, size=30, fit_box=True)[0, ..., 0]
    # Across (columns), one pixel per image pixel; along (rows), every other image row,
    # sampled halfway between two of them.
    rows = 0.5 * (image[0, 51:111:2] + image[0, 52:112:2])
    np.testing.assert_allclose(window, rows[:, 86:116], atol=1e-6)


def test_a_fitted_window_shows_a_box_too_wide_for_its_ship(ships):
    images, labels = ships
    wide = labels.copy()
    wide[:, 3] *= 1.6

    # Thresholded ship pixels per window column: in a fitted window the true box's ship
    # reaches the box's sides (a third of the way in), the too-wide box's stays in the middle.
    def share_in_middle(boxes, fit_box=True):
        columns = crop_windows(images, boxes, fit_box=fit_box)[..., 1].sum(axis=(0, 1))
        return columns[24:40].sum() / columns.sum()

    assert share_in_middle(wide) > share_in_middle(labels) + 0.1
    # The plain window is scaled by the larger side: the same width change barely shows.
    plain_change = share_in_middle(wide, fit_box=False) - share_in_middle(labels, fit_box=False)
    assert abs(plain_change) < share_in_middle(wide) - share_in_middle(labels)


def test_targets_and_corrections_are_inverses(ships):
    _, labels = ships
    proposals = perturbed_proposals(labels, np.random.default_rng(1))
    targets = refinement_targets(proposals, labels)
    assert targets.shape == (len(labels), len(TARGET_COLUMNS))
    np.testing.assert_allclose(np.hypot(targets[:, 4], targets[:, 5]), 1.0, atol=1e-6)
    refined = apply_refinement(proposals, targets)
    np.testing.assert_allclose(rotated_iou(refined, labels), 1.0, atol=1e-5)
    np.testing.assert_allclose(refined[:, [0, 1, 3, 4]], labels[:, [0, 1, 3, 4]], atol=1e-3)


def test_training_proposals_miss_by_about_the_detectors_errors(ships):
    _, labels = ships
    rng = np.random.default_rng(2)
    truth = np.repeat(labels, 20, axis=0)
    proposals = perturbed_proposals(truth, rng, wild_share=0.0)
    centre = proposals[:, :2] - truth[:, :2]
    assert np.std(centre) == pytest.approx(PROPOSAL_NOISE[0], rel=0.1)
    assert np.std(np.log(proposals[:, 3:] / truth[:, 3:])) == pytest.approx(
        PROPOSAL_NOISE[2], rel=0.1
    )
    assert 0.5 < np.median(rotated_iou(proposals, truth)) < 0.85  # near the 0.7 line
    with pytest.raises(ValueError, match="ships only"):
        perturbed_proposals(np.full((1, 5), np.nan), rng)
    with pytest.raises(ValueError, match="wild_share"):
        perturbed_proposals(truth, rng, wild_share=1.5)


def test_a_share_of_training_proposals_has_its_axis_anywhere(ships):
    _, labels = ships
    truth = np.repeat(labels, 50, axis=0)
    proposals = perturbed_proposals(truth, np.random.default_rng(5))
    turns = correction_turns(refinement_targets(proposals, truth))
    # Normal errors of 0.15 rad almost never pass 0.6 rad; uniform turns do 62 % of the time.
    share_far = np.mean(np.abs(turns) > 0.6)
    assert share_far == pytest.approx(WILD_SHARE * (1 - 1.2 / np.pi), abs=0.03)


def test_a_share_of_training_proposals_points_the_nose_the_wrong_way(ships):
    _, labels = ships
    truth = np.repeat(labels, 50, axis=0)
    proposals = perturbed_proposals(truth, np.random.default_rng(7))
    flipped = np.cos(proposals[:, 2] - truth[:, 2]) < 0
    assert np.mean(flipped) == pytest.approx(FLIP_SHARE, abs=0.03)
    # The targets ignore the nose: a flipped proposal needs no half turn.
    assert np.abs(correction_turns(refinement_targets(proposals, truth))).max() <= np.pi / 2
    with pytest.raises(ValueError, match="flip_share"):
        perturbed_proposals(truth, np.random.default_rng(7), flip_share=-0.1)


def test_axes_a_half_turn_apart_need_no_turn():
    box = np.array([[100.0, 100.0, 0.2, 20.0, 30.0]])
    flipped = box + [0, 0, np.pi - 0.02, 0, 0]  # nose the other way, axis 0.02 rad off
    targets = refinement_targets(flipped, box)
    np.testing.assert_allclose(correction_turns(targets), [0.02], atol=1e-6)
    with pytest.raises(ValueError, match=r"corrections must have shape \(N, 6\)"):
        window_frame_boxes(np.zeros((2, 5)))


def test_the_refiner_loss_is_zero_for_the_true_corrections_and_grows_with_errors(ships):
    from spaceship_utils.networks.windows import unchanged_corrections

    _, labels = ships
    proposals = perturbed_proposals(labels, np.random.default_rng(3))
    targets = refinement_targets(proposals, labels)
    perfect = float(refiner_loss(targets, targets))
    assert perfect == pytest.approx(0.0, abs=1e-4)
    worse = targets.copy()
    worse[:, 2] += 0.1  # every width 10 % too large
    iou = np.mean(1 - rotated_iou(apply_refinement(proposals, worse), labels))
    assert float(refiner_loss(targets, worse)) == pytest.approx(0.1 + iou, abs=1e-3)
    # Unchanged corrections give the proposals back.
    same = apply_refinement(proposals, unchanged_corrections(proposals))
    np.testing.assert_allclose(same[:, [0, 1, 3, 4]], proposals[:, [0, 1, 3, 4]], atol=1e-9)


def test_the_refiner_reads_windows_and_answers_six_corrections(ships):
    images, labels = ships
    model = build_refiner(width=8)
    windows = crop_windows(images[:4], labels[:4])
    assert windows.shape == (4, 64, 64, 2) and windows.dtype == np.float32
    outputs = keras.ops.convert_to_numpy(model(windows))
    assert outputs.shape == (4, 6) and np.isfinite(outputs).all()
    with pytest.raises(ValueError, match="drop the NaN rows"):
        crop_windows(images[:1], np.full((1, 5), np.nan))


@pytest.mark.slow
def test_a_refiner_run_trains_and_joins_the_detector_in_one_pipeline(tmp_path):
    from spaceship_utils.detection.refined import RefinedDetectorPipeline
    from spaceship_utils.pretrained import load_refined_detector_run
    from spaceship_utils.training.batches import validation_data
    from spaceship_utils.training.loop import train_model

    refiner = tiny_config("refiner")
    outcome = train_model(refiner, tmp_path / "refiner", verbose=False)
    assert outcome.finished and 0 <= outcome.history["val_ap07"][0] <= 1
    windows, targets, labels = validation_data("refiner", 8, refiner.seed)
    assert windows.shape == (8, 64, 64, 2) and targets.shape == (8, 6)
    assert np.isfinite(labels).all()  # every validation image holds a ship

    detector = tiny_config("detector", steps_per_epoch=1)
    train_model(detector, tmp_path / "detector", verbose=False)
    model = load_refined_detector_run(
        tmp_path / "detector", tmp_path / "refiner", presence_threshold=0.0
    )
    assert isinstance(model, RefinedDetectorPipeline) and len(model.networks) == 2
    images, _ = generate_batch(3, np.random.default_rng(4))
    details = model.predict_details(images)
    assert details.boxes.shape == (3, 5) and np.isfinite(details.boxes).all()  # threshold 0
    with pytest.raises(ValueError, match="holds no refiner run"):
        load_refined_detector_run(tmp_path / "detector", tmp_path / "detector")


def test_the_first_refiner_windows_come_from_clean_images():
    from spaceship_utils.networks.windows import CLEAN_WINDOWS
    from spaceship_utils.training.batches import GeneratedBatches

    batches = GeneratedBatches("refiner", 32, 1000, seed=0)
    last_clean = CLEAN_WINDOWS // 32 - 1
    clean, _ = batches.batch_at_step(last_clean)
    noisy, _ = batches.batch_at_step(last_clean + 1)
    # Without noise, most of a window is exactly 0; with it, only what lies off the image.
    assert np.mean(clean[..., 0] == 0) > 0.5 and np.mean(noisy[..., 0] == 0) < 0.2


@pytest.mark.slow
def test_a_refined_detector_shares_the_detectors_and_the_classifiers_weights_files(tmp_path):
    from spaceship_utils.detection.refined import RefinedDetectorPipeline
    from spaceship_utils.pretrained import install_run, load_pretrained, share_shipped_weights
    from spaceship_utils.training.loop import train_model

    weights = tmp_path / "weights"
    smallest = {"steps_per_epoch": 1, "batch_size": 2, "validation_samples": 4}
    runs = {
        task: tiny_config(task, **smallest)
        for task in ("classifier", "detector", "refiner", "verifier")
    }
    for role, config in runs.items():
        train_model(config, tmp_path / role, verbose=False)
    install_run("baseline", "classifier", tmp_path / "classifier", weights)
    install_run("detector", "detector", tmp_path / "detector", weights)
    install_run("refined_detector", "refiner", tmp_path / "refiner", weights, 0.3)
    install_run(
        "refined_detector",
        "verifier",
        tmp_path / "verifier",
        weights,
        restart_below=0.6,
        verified_presence_threshold=0.55,
        outline_weight=0.05,
    )
    share_shipped_weights("refined_detector", "detector", "detector", weights)
    share_shipped_weights("refined_detector", "classifier", "baseline", weights)
    model = load_pretrained("refined_detector", weights)
    assert isinstance(model, RefinedDetectorPipeline) and model.presence_threshold == 0.3
    assert model.classifier is not None and model.restart_below == 0.6
    assert model.vote.verifier_votes and model.gate_threshold == 0.55
    assert model.outline_weight == 0.05
    assert model.network_passes == (1, model.passes, 1, 1)  # one view of each window
    manifest = json.loads((weights / "manifest.json").read_text())
    for role, source in (("detector", "detector"), ("classifier", "baseline")):
        shared = manifest["refined_detector"]["files"][role]
        assert shared == manifest[source]["files"][role]  # one file, one digest
    with pytest.raises(ValueError, match="must have a 'refiner' network"):
        share_shipped_weights("detector", "refiner", "refined_detector", weights)
    with pytest.raises(ValueError, match="only the refined detector has a verified_presence"):
        install_run(
            "detector", "detector", tmp_path / "detector", weights, verified_presence_threshold=0.5
        )
    with pytest.raises(ValueError, match="verified_presence_threshold"):
        install_run(
            "refined_detector",
            "verifier",
            tmp_path / "verifier",
            weights,
            verified_presence_threshold=1.5,
        )
    with pytest.raises(ValueError, match="outline_weight"):
        install_run(
            "refined_detector", "verifier", tmp_path / "verifier", weights, outline_weight=-1
        )


def test_the_refinement_figure_shows_each_window_with_three_boxes(ships):
    import matplotlib.pyplot as plt

    from spaceship_utils.networks.refiner import refined_ious
    from spaceship_utils.networks.windows import unchanged_corrections
    from spaceship_utils.plotting.detection import plot_refinements

    images, labels = ships
    proposals = perturbed_proposals(labels[:5], np.random.default_rng(6))
    targets = refinement_targets(proposals, labels[:5])
    windows = crop_windows(images[:5], proposals)
    unchanged = unchanged_corrections(proposals)
    np.testing.assert_allclose(
        refined_ious(targets, unchanged), rotated_iou(proposals, labels[:5]), atol=1e-6
    )
    fig = plot_refinements(windows, targets, targets, unchanged, columns=3)
    visible = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 6 and len(visible) == 5
    before = rotated_iou(proposals[:1], labels[:1])[0]
    assert visible[0].get_title() == f"IoU {before:.2f} -> 1.00"
    assert len(visible[0].lines) == 3  # the proposal, the truth and the refined box
    plt.close(fig)


def test_boxes_around_the_truth_show_each_box_in_the_true_boxs_window(ships):
    import matplotlib.pyplot as plt

    from spaceship_utils.plotting.detection import plot_boxes_around_truth

    images, labels = ships
    boxes = labels[:3].copy()
    boxes[:, 2] += np.radians(40)  # turned 40°, as the worst boxes are
    fig = plot_boxes_around_truth(images[:3], labels[:3], boxes, columns=3)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 3 and all(len(ax.lines) == 2 for ax in panels)  # no proposal
    expected = rotated_iou(boxes[:1], labels[:1])[0]
    assert panels[0].get_title() == f"IoU {expected:.2f}"
    plt.close(fig)


def test_network_outputs_are_predicts_numbers_batch_by_batch():
    from spaceship_utils.core.runtime import network_outputs

    model = build_refiner(width=8)
    windows = np.random.default_rng(0).random((5, 64, 64, 2)).astype(np.float32)
    np.testing.assert_array_equal(
        network_outputs(model, windows, batch_size=2),
        model.predict(windows, batch_size=2, verbose=0),
    )
    assert network_outputs(model, windows[:0]).shape == (0, 6)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        network_outputs(model, windows, batch_size=0)


def test_each_refiner_pass_corrects_the_last_correction(ships, monkeypatch):
    from spaceship_utils.detection import refined

    images, _ = ships
    box = np.array([[100.0, 100.0, 0.3, 20.0, 30.0]])
    step = np.array([[0.01, 0.0, np.log(20 / 45), np.log(30 / 45), 1.0, 0.0]])  # 1 % of the side

    class Refiner:
        def predict_on_batch(self, windows):
            return np.repeat(step, len(windows), axis=0)

    # The detector proposes `box` for every image.
    monkeypatch.setattr(
        refined.DetectorPipeline,
        "raw_predictions",
        lambda self, batch, batch_size: (np.repeat(box, len(batch), 0), np.ones(len(batch))),
    )
    expected = box
    for passes in (0, 1, 2):
        model = refined.RefinedDetectorPipeline(None, Refiner(), passes=passes, views=False)
        got, _ = model.raw_predictions(images[:2].astype(np.float32), 8)
        np.testing.assert_allclose(got, np.repeat(expected, 2, axis=0), atol=1e-9)
        expected = apply_refinement(expected, step)  # the next pass moves it once more
    assert not np.allclose(apply_refinement(box, step), box)


def test_a_classifier_votes_on_presence_with_the_detector(ships, monkeypatch):
    from spaceship_utils.detection import refined

    images, _ = ships
    box = np.array([[100.0, 100.0, 0.3, 20.0, 30.0]])

    class Classifier:
        def predict_on_batch(self, inputs):
            assert inputs.max() <= 1 and np.mean(inputs == 0) > 0.9  # thresholded images
            return np.full((len(inputs), 1), 0.2)

    monkeypatch.setattr(
        refined.DetectorPipeline,
        "raw_predictions",
        lambda self, batch, batch_size: (np.repeat(box, len(batch), 0), np.full(len(batch), 0.6)),
    )
    alone = refined.RefinedDetectorPipeline(None, None, 0.5, passes=0)
    voted = refined.RefinedDetectorPipeline(None, None, 0.5, passes=0, classifier=Classifier())
    np.testing.assert_allclose(alone.predict_details(images[:2]).presence, 0.6)
    details = voted.predict_details(images[:2])
    np.testing.assert_allclose(details.presence, 0.4)  # the mean of 0.6 and 0.2
    assert np.isnan(details.boxes).all()  # below the threshold 0.5: no box


def test_the_pass_and_vote_tables_score_each_pass_and_each_opinion(ships, monkeypatch):
    from spaceship_utils.detection import refined, refinement
    from spaceship_utils.evaluation.refiner_tables import (
        presence_vote_table,
        refiner_pass_table,
        refiner_runs,
    )

    images, labels = ships[0][:6], ships[1][:6].copy()
    labels[5] = np.nan  # an empty image
    proposals = labels.copy()
    proposals[:5, 0] += 15.0  # every ship's box 15 px off: IoU below 0.7
    proposals[5] = [50.0, 50.0, 0.0, 20.0, 30.0]
    # Detector: sure of four ships, unsure of the fifth, fooled by the empty image.
    presence = np.array([0.9, 0.9, 0.9, 0.2, 0.9, 0.6])

    class Refiner:  # its one pass puts every ship's box on the ship (apply_refinement below)
        def predict_on_batch(self, windows):
            return np.zeros((len(windows), 6))

    class Classifier:  # sure of the ships, unsure of the empty image
        def predict_on_batch(self, inputs):
            return np.array([[1.0]] * 5 + [[0.5]])

    monkeypatch.setattr(
        refined.DetectorPipeline,
        "raw_predictions",
        lambda self, batch, batch_size: (proposals.copy(), presence),
    )
    monkeypatch.setattr(
        refinement, "apply_refinement", lambda boxes, _: np.vstack([labels[:5], boxes[5:]])
    )
    model = refined.RefinedDetectorPipeline(
        None, Refiner(), 0.55, passes=1, classifier=Classifier()
    )
    # Mean presence 0.95, 0.95, 0.95, 0.6, 0.95, 0.55: a box on every image at 0.55.
    runs = refiner_runs(model, images, passes=1)
    rows = [line.split() for line in refiner_pass_table(runs, labels).splitlines()]
    # Five hits and one false box, whether the refiner sees each window once or four times.
    assert rows[2:] == [["0", "0.0000", "0.0000"], ["1", "0.8333", "0.8333"]]
    lines = presence_vote_table(runs, labels).splitlines()[2:]
    rows = {line[:15].strip(): line[15:].split() for line in lines}
    # Alone, the detector must lose a ship or keep the false box: 5 of 6 at best.
    assert rows["detector"] == ["0.05", "0.8333", "0.8333"]
    assert rows["mean of the two"] == ["0.56", "1.0000", "1.0000"]
    assert rows["the truth"] == ["-", "1.0000", "1.0000"]
    alone = refined.RefinedDetectorPipeline(None, Refiner(), 0.55, passes=1)
    with pytest.raises(ValueError, match="no classifier"):
        presence_vote_table(refiner_runs(alone, images, passes=1), labels)
    with pytest.raises(ValueError, match="at least the model's 1"):
        refiner_runs(model, images, passes=0)


def test_the_refined_detector_counts_its_refiner_once_per_pass():
    from spaceship_utils.detection.refined import RefinedDetectorPipeline

    assert RefinedDetectorPipeline(None, None, passes=2, views=False).network_passes == (1, 2)
    assert RefinedDetectorPipeline(None, None, passes=2, views=True).network_passes == (1, 8)
    with pytest.raises(TypeError, match="views must be True or False"):
        RefinedDetectorPipeline(None, None, views=4)


def test_each_window_view_is_the_window_of_a_reflected_or_turned_proposal(ships):
    """The four views of a window are windows the refiner could have been given: of the
    mirrored image around the mirrored proposal, of the proposal turned half a turn, and of
    both; their true corrections, turned back, are the window's own."""
    from spaceship_utils.detection.symmetry import transform_boxes, transform_images
    from spaceship_utils.networks.windows import average_view_corrections, window_views

    images, labels = ships
    proposals = perturbed_proposals(labels, np.random.default_rng(5))

    def half_turned(boxes):
        return np.column_stack([boxes[:, :2], boxes[:, 2] + np.pi, boxes[:, 3:]])

    mirrored = (transform_images(images, 1), transform_boxes(proposals, 1))
    cases = [  # (image, proposal, true box) whose window is each view, in WINDOW_VIEWS order
        (images, proposals, labels),
        (*mirrored, transform_boxes(labels, 1)),
        (mirrored[0], half_turned(mirrored[1]), transform_boxes(labels, 1)),
        (images, half_turned(proposals), labels),
    ]
    views = window_views(crop_windows(images, proposals))
    count = len(labels)
    for index, (view_images, view_proposals, _) in enumerate(cases):
        np.testing.assert_allclose(
            views[index * count : (index + 1) * count],
            crop_windows(view_images, view_proposals),
            atol=1e-4,
        )
    targets = np.concatenate([refinement_targets(p, t) for _, p, t in cases])
    np.testing.assert_allclose(
        average_view_corrections(targets), refinement_targets(proposals, labels), atol=1e-5
    )


def test_view_corrections_come_four_by_four():
    from spaceship_utils.networks.windows import average_view_corrections, window_views

    with pytest.raises(ValueError, match="4 views of each window, got 6 rows"):
        average_view_corrections(np.zeros((6, len(TARGET_COLUMNS))))
    with pytest.raises(ValueError, match=r"windows must have shape \(N, S, S, C\)"):
        window_views(np.zeros((2, 8, 8)))


def test_the_refined_detector_averages_its_refiner_over_the_views(ships, monkeypatch):
    from spaceship_utils.detection import refined

    images, labels = ships
    calls = []

    class Refiner:  # answers "move across by 0.1 of the window", whatever the view
        def predict_on_batch(self, windows):
            calls.append(len(windows))
            answers = np.zeros((len(windows), len(TARGET_COLUMNS)))
            answers[:, 0], answers[:, 2:5] = 0.1, (np.log(0.5), np.log(0.6), 1.0)
            return answers

    model = refined.RefinedDetectorPipeline(None, Refiner(), passes=1, views=True)
    corrections = model.refinement.corrections(crop_windows(images[:3], labels[:3]))
    assert calls == [12]
    # The shift across flips sign in the mirrored views: it averages out.
    np.testing.assert_allclose(corrections[:, 0], 0.0, atol=1e-12)
    np.testing.assert_allclose(corrections[:, 2:5], [[np.log(0.5), np.log(0.6), 1.0]] * 3)
