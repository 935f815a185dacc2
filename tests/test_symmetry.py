import numpy as np
import pytest

from spaceship_utils.core.geometry import box_corners, heading_vectors, rotated_iou
from spaceship_utils.data.generator import generate_batch
from spaceship_utils.detection.pipelines import Predictions
from spaceship_utils.detection.symmetry import (
    SYMMETRIES,
    inverse_symmetry,
    predict_with_symmetries,
    transform_boxes,
    transform_images,
)

LAST = 199


def transform_points(points: np.ndarray, k: int) -> np.ndarray:
    """Move (x, y) points the way the image pixels move, written out independently."""
    x, y = points[..., 0].copy(), points[..., 1].copy()
    if k & 1:
        x = LAST - x
    if k & 2:
        y = LAST - y
    if k & 4:
        x, y = y, x
    return np.stack([x, y], -1)


@pytest.fixture(scope="module")
def clean_ships():
    """Noise-free, line-free ships with their labels (float64)."""
    images, labels = generate_batch(
        40, np.random.default_rng(0), ship_probability=1.0, noise_level=0.0, no_lines=0
    )
    return images, labels.astype(np.float64)


@pytest.mark.parametrize("k", SYMMETRIES)
def test_images_and_boxes_round_trip_through_the_inverse(clean_ships, k):
    images, labels = clean_ships
    back = transform_images(transform_images(images, k), inverse_symmetry(k))
    np.testing.assert_array_equal(back, images)
    boxes = transform_boxes(transform_boxes(labels, k), inverse_symmetry(k))
    np.testing.assert_allclose(boxes, labels, atol=1e-9)


@pytest.mark.parametrize("k", SYMMETRIES)
def test_box_corners_move_with_the_pixels(clean_ships, k):
    _, labels = clean_ships
    moved = transform_points(box_corners(labels), k)
    expected = box_corners(transform_boxes(labels, k))
    # Same four corners, possibly listed in another order.
    for got, want in zip(moved, expected, strict=True):
        distances = np.linalg.norm(got[:, None, :] - want[None, :, :], axis=-1)
        assert distances.min(axis=1).max() < 1e-9


@pytest.mark.parametrize("k", SYMMETRIES)
def test_the_nose_follows_the_transformed_yaw(clean_ships, k):
    images, labels = clean_ships
    moved_images, moved_labels = transform_images(images, k), transform_boxes(labels, k)
    for image, (x, y, yaw, width, height) in zip(moved_images, moved_labels, strict=True):
        if height < 1.3 * width:
            continue  # nearly square ships make the test below ambiguous
        rows, cols = np.nonzero(image)
        along_x, along_y = heading_vectors(np.array([yaw]))[0]
        offset_x, offset_y = cols - x, rows - y
        along = offset_x * along_x + offset_y * along_y
        across = np.abs(-offset_x * along_y + offset_y * along_x)
        # The nose end of the outline is narrow, the wing end wide.
        nose_end = across[along > 0.3 * height].mean()
        wing_end = across[along < -0.3 * height].mean()
        assert nose_end < wing_end


def test_nan_rows_stay_nan_and_bad_index_is_refused():
    assert np.isnan(transform_boxes(np.full((1, 5), np.nan), 5)).all()
    with pytest.raises(ValueError, match="symmetry index"):
        transform_boxes(np.zeros((1, 5)), 8)
    with pytest.raises(ValueError, match="symmetry index"):
        transform_images(np.zeros((1, 200, 200)), True)


class Oracle:
    """Knows the label of every transformed image: an exactly equivariant 'model'."""

    def __init__(self, images, labels):
        self.table = {}
        for k in SYMMETRIES:
            for image, label in zip(
                transform_images(images, k), transform_boxes(labels, k), strict=True
            ):
                self.table[image.tobytes()] = label

    def predict_details(self, images):
        boxes = np.array([self.table[image.tobytes()] for image in images])
        return Predictions(boxes=boxes, presence=np.ones(len(images)), raw_boxes=boxes)


def test_averaging_an_equivariant_model_changes_nothing(clean_ships):
    images, labels = clean_ships
    averaged = predict_with_symmetries(Oracle(images, labels), images)
    np.testing.assert_allclose(averaged.boxes[:, [0, 1, 3, 4]], labels[:, [0, 1, 3, 4]], atol=1e-9)
    error = np.abs(np.angle(np.exp(1j * (averaged.boxes[:, 2] - labels[:, 2]))))
    assert error.max() < 1e-9


def test_the_averaging_wrapper_is_a_pipeline(clean_ships):
    from spaceship_utils.detection.symmetry import SymmetryAveraged

    images, labels = clean_ships
    wrapped = SymmetryAveraged(Oracle(images, labels))
    np.testing.assert_array_equal(
        wrapped.predict(images), predict_with_symmetries(Oracle(images, labels), images).boxes
    )
    with pytest.raises(ValueError, match="presence_threshold"):
        SymmetryAveraged(Oracle(images, labels), presence_threshold=2.0)


def test_the_wrapper_keeps_the_pipelines_threshold_and_counts_its_passes(clean_ships):
    from spaceship_utils.detection.symmetry import SymmetryAveraged

    images, labels = clean_ships
    oracle = Oracle(images, labels)
    oracle.presence_threshold, oracle.networks = 0.41, ["network"]
    assert SymmetryAveraged(oracle).presence_threshold == 0.41
    assert SymmetryAveraged(oracle, presence_threshold=0.6).presence_threshold == 0.6
    four = SymmetryAveraged(oracle, symmetries=(0, 1, 2, 3))
    assert four.passes == 4 and SymmetryAveraged(oracle).passes == 8
    assert four.network_passes == (4,)  # the oracle's one 'network', once per view
    assert four.networks == ["network"]
    np.testing.assert_allclose(four.predict(images)[:, [0, 1, 3, 4]], labels[:, [0, 1, 3, 4]])
    for bad in ((), (0, 0), (0, 9)):
        with pytest.raises(ValueError, match="symmetr"):
            SymmetryAveraged(oracle, symmetries=bad)


def test_each_view_of_a_sample_carries_its_own_ship_box(clean_ships):
    from spaceship_utils.detection.outline_fit import fit_outlines
    from spaceship_utils.detection.symmetry import views_of_sample

    images, labels = clean_ships
    views, boxes = views_of_sample(images[0], labels[0])
    assert views.shape == (8, 200, 200) and boxes.shape == (8, 5)
    # In every view, the generator's outline drawn from the view's box lies on the ship:
    # fitted from there it stays close (as close in every view) and finds a ship's evidence
    # (an outline on empty background finds about 0).
    fits = fit_outlines(views, boxes)
    overlaps = rotated_iou(fits.boxes, boxes)
    assert overlaps.min() > 0.9
    np.testing.assert_allclose(overlaps, overlaps[0], rtol=1e-6)
    assert fits.log_ratios.min() > 10
    assert len({views[k].tobytes() for k in SYMMETRIES}) == 8  # eight different images


def test_symmetry_names():
    from spaceship_utils.detection.symmetry import symmetry_name

    assert symmetry_name(0) == "identity"
    assert symmetry_name(7) == "flip x + flip y + transpose"
    assert len({symmetry_name(k) for k in SYMMETRIES}) == 8


def test_view_averages_name_chapter_8_s_two_averages():
    from spaceship_utils.detection.symmetry import SYMMETRIES, view_averages

    averages = view_averages(object(), "detector")
    assert list(averages) == ["detector, 4 views", "detector, 8 views"]
    assert averages["detector, 4 views"].symmetries == SYMMETRIES[:4]
    assert averages["detector, 8 views"].passes == 8
