import json

import keras
import numpy as np
import pytest

from spaceship_utils.data import generate_batch
from spaceship_utils.geometry import rotated_iou
from spaceship_utils.refiner import (
    PROPOSAL_NOISE,
    TARGET_COLUMNS,
    apply_refinement,
    build_refiner,
    crop_windows,
    perturbed_proposals,
    refinement_targets,
    refiner_loss,
)


@pytest.fixture(scope="module")
def ships():
    images, labels = generate_batch(64, np.random.default_rng(11), ship_probability=1.0)
    return images, labels.astype(np.float64)


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


def test_targets_and_corrections_are_inverses(ships):
    _, labels = ships
    proposals = perturbed_proposals(labels, np.random.default_rng(1))
    targets = refinement_targets(proposals, labels)
    assert targets.shape == (len(labels), len(TARGET_COLUMNS))
    assert np.abs(targets[:, 4]).max() <= np.pi / 2
    refined = apply_refinement(proposals, targets)
    np.testing.assert_allclose(rotated_iou(refined, labels), 1.0, atol=1e-5)
    np.testing.assert_allclose(refined[:, [0, 1, 3, 4]], labels[:, [0, 1, 3, 4]], atol=1e-3)


def test_training_proposals_miss_by_about_the_detectors_errors(ships):
    _, labels = ships
    rng = np.random.default_rng(2)
    proposals = perturbed_proposals(np.repeat(labels, 20, axis=0), rng)
    truth = np.repeat(labels, 20, axis=0)
    centre = proposals[:, :2] - truth[:, :2]
    assert np.std(centre) == pytest.approx(PROPOSAL_NOISE[0], rel=0.1)
    assert np.std(np.log(proposals[:, 3:] / truth[:, 3:])) == pytest.approx(
        PROPOSAL_NOISE[2], rel=0.1
    )
    assert 0.5 < np.median(rotated_iou(proposals, truth)) < 0.85  # near the 0.7 line
    with pytest.raises(ValueError, match="ships only"):
        perturbed_proposals(np.full((1, 5), np.nan), rng)


def test_the_refiner_loss_is_zero_for_the_true_corrections_and_grows_with_errors(ships):
    from spaceship_utils.refiner import unchanged_corrections

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


def test_the_refiner_reads_windows_and_answers_five_corrections(ships):
    images, labels = ships
    model = build_refiner(width=8)
    windows = crop_windows(images[:4], labels[:4])
    assert windows.shape == (4, 64, 64, 2) and windows.dtype == np.float32
    outputs = keras.ops.convert_to_numpy(model(windows))
    assert outputs.shape == (4, 5) and np.isfinite(outputs).all()
    with pytest.raises(ValueError, match="drop the NaN rows"):
        crop_windows(images[:1], np.full((1, 5), np.nan))


def test_a_refiner_run_trains_and_joins_the_detector_in_one_pipeline(tmp_path):
    from spaceship_utils.pipelines import RefinedDetectorPipeline
    from spaceship_utils.pretrained import load_refined_detector_run
    from spaceship_utils.train import TrainingConfig, train_model, validation_data

    refiner = TrainingConfig.recipe(
        "refiner", epochs=1, steps_per_epoch=2, batch_size=4, validation_samples=8
    )
    outcome = train_model(refiner, tmp_path / "refiner", verbose=False)
    assert outcome.finished and 0 <= outcome.history["val_ap07"][0] <= 1
    windows, targets, labels = validation_data("refiner", 8, refiner.seed)
    assert windows.shape == (8, 64, 64, 2) and targets.shape == (8, 5)
    assert np.isfinite(labels).all()  # every validation image holds a ship

    detector = TrainingConfig.recipe(
        "detector",
        epochs=1,
        steps_per_epoch=1,
        batch_size=4,
        validation_samples=8,
        detector_options={"width": 8, "dilations": [1]},
    )
    train_model(detector, tmp_path / "detector", verbose=False)
    model = load_refined_detector_run(tmp_path / "detector", tmp_path / "refiner", 0.0)
    assert isinstance(model, RefinedDetectorPipeline) and len(model.networks) == 2
    images, _ = generate_batch(3, np.random.default_rng(4))
    details = model.predict_details(images)
    assert details.boxes.shape == (3, 5) and np.isfinite(details.boxes).all()  # threshold 0
    with pytest.raises(ValueError, match="holds no refiner run"):
        load_refined_detector_run(tmp_path / "detector", tmp_path / "detector")


def test_the_first_refiner_windows_come_from_clean_images():
    from spaceship_utils.refiner import CLEAN_WINDOWS
    from spaceship_utils.train import GeneratedBatches

    batches = GeneratedBatches("refiner", 32, 1000, seed=0)
    last_clean = CLEAN_WINDOWS // 32 - 1
    clean, _ = batches.batch_at_step(last_clean)
    noisy, _ = batches.batch_at_step(last_clean + 1)
    # Without noise, most of a window is exactly 0; with it, only what lies off the image.
    assert np.mean(clean[..., 0] == 0) > 0.5 and np.mean(noisy[..., 0] == 0) < 0.2


def test_a_refined_detector_ships_with_the_detectors_own_weights_file(tmp_path):
    from spaceship_utils.pipelines import RefinedDetectorPipeline
    from spaceship_utils.pretrained import install_run, load_pretrained, share_shipped_weights
    from spaceship_utils.train import TrainingConfig, train_model

    weights = tmp_path / "weights"
    runs = {
        "detector": TrainingConfig.recipe(
            "detector",
            epochs=1,
            steps_per_epoch=1,
            batch_size=2,
            validation_samples=4,
            detector_options={"width": 8, "dilations": [1]},
        ),
        "refiner": TrainingConfig.recipe(
            "refiner", epochs=1, steps_per_epoch=1, batch_size=2, validation_samples=4
        ),
    }
    for role, config in runs.items():
        train_model(config, tmp_path / role, verbose=False)
    install_run("detector", "detector", tmp_path / "detector", weights)
    install_run("refined_detector", "refiner", tmp_path / "refiner", weights, 0.3)
    share_shipped_weights("refined_detector", "detector", "detector", weights)
    model = load_pretrained("refined_detector", weights)
    assert isinstance(model, RefinedDetectorPipeline) and model.presence_threshold == 0.3
    manifest = json.loads((weights / "manifest.json").read_text())
    shared = manifest["refined_detector"]["files"]["detector"]
    assert shared == manifest["detector"]["files"]["detector"]  # one file, one digest
    with pytest.raises(ValueError, match="must have a 'refiner' network"):
        share_shipped_weights("detector", "refiner", "refined_detector", weights)


def test_the_refinement_figure_shows_each_window_with_three_boxes(ships):
    import matplotlib.pyplot as plt

    from spaceship_utils.plotting import plot_refinements
    from spaceship_utils.refiner import refined_ious, unchanged_corrections

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


def test_each_refiner_pass_corrects_the_last_correction(ships, monkeypatch):
    from spaceship_utils import pipelines

    images, _ = ships
    box = np.array([[100.0, 100.0, 0.3, 20.0, 30.0]])
    step = np.array([[0.01, 0.0, np.log(20 / 45), np.log(30 / 45), 0.0]])  # 1 % of the side

    class Refiner:
        def predict(self, windows, batch_size, verbose):
            return np.repeat(step, len(windows), axis=0)

    # The detector proposes `box` for every image.
    monkeypatch.setattr(
        pipelines.DetectorPipeline,
        "raw_predictions",
        lambda self, batch, batch_size: (np.repeat(box, len(batch), 0), np.ones(len(batch))),
    )
    expected = box
    for passes in (0, 1, 2):
        refined = pipelines.RefinedDetectorPipeline(None, Refiner(), passes=passes)
        got, _ = refined.raw_predictions(images[:2].astype(np.float32), 8)
        np.testing.assert_allclose(got, np.repeat(expected, 2, axis=0), atol=1e-9)
        expected = apply_refinement(expected, step)  # the next pass moves it once more
    assert not np.allclose(apply_refinement(box, step), box)


def test_the_refined_detector_counts_its_refiner_once_per_pass():
    from spaceship_utils.pipelines import RefinedDetectorPipeline

    assert RefinedDetectorPipeline(None, None, passes=2).network_passes == (1, 2)
