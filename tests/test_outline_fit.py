import numpy as np
import pytest
from skimage.draw import line, polygon_perimeter

from spaceship_utils.core.geometry import rotated_iou, rotation_matrices, ship_outline_local
from spaceship_utils.data.generator import make_data
from spaceship_utils.detection.candidates import check_weight, judged_scores
from spaceship_utils.detection.outline_fit import (
    CENTRE_SHIFT,
    FAILED_FIT,
    LINE_SHARE,
    LOG_RATIO_FLOOR,
    _corners_of,
    _segment_sum,
    boxes_from_corners,
    fit_outlines,
    log_ratio_maps,
)


def test_an_edge_sums_the_pixels_skimage_draws_but_its_last():
    rng = np.random.default_rng(0)
    ratios = rng.normal(size=(200, 200)).astype(np.float32)
    for _ in range(300):  # end points inside and outside the image, any direction
        x0, y0, x1, y1 = (int(v) for v in rng.integers(-15, 215, 4))
        xs, ys = line(x0, y0, x1, y1)
        inside = (xs >= 0) & (xs < 200) & (ys >= 0) & (ys < 200)
        inside[-1] = False  # the end pixel starts the next edge
        expected = ratios[ys[inside], xs[inside]].astype(np.float64).sum()
        assert _segment_sum(ratios, x0, y0, x1, y1) == pytest.approx(expected, abs=1e-4)


def test_the_four_edges_are_the_outline_the_generator_draws():
    rng = np.random.default_rng(1)
    ratios = rng.normal(size=(200, 200)).astype(np.float32)
    twice = 0
    for _ in range(100):
        box = np.array([*rng.integers(10, 190, 2), rng.uniform(0, 2 * np.pi), 0.0, 0.0])
        box[3] = rng.integers(18, 37)
        box[4] = box[3] * rng.uniform(1.1, 1.9)
        tail = rng.uniform(0.15, 0.55)
        # As the official helper does it: outline points, rotated, moved, then skimage.
        points = ship_outline_local(box[3], box[4], tail) @ rotation_matrices(box[2]) + box[:2]
        xs, ys = polygon_perimeter(points[:, 0], points[:, 1])
        drawn = set(zip(xs.tolist(), ys.tolist(), strict=True))
        corners = _corners_of(*box, tail)
        edges = []  # each edge without its end pixel, which starts the next one
        for k in range(4):
            xs, ys = line(*corners[k], *corners[(k + 1) % 4])
            edges += list(zip(xs.tolist(), ys.tolist(), strict=True))[:-1]
        assert set(edges) == drawn
        twice += len(edges) - len(drawn)
        inside = [(x, y) for x, y in edges if 0 <= x < 200 and 0 <= y < 200]
        total = sum(_segment_sum(ratios, *corners[k], *corners[(k + 1) % 4]) for k in range(4))
        assert total == pytest.approx(sum(float(ratios[y, x]) for x, y in inside), abs=1e-3)
    # Where an edge leaves a sharp wing tip, its first pixel may be the last one of the
    # edge before: counted twice, one or two pixels of some 150.
    assert twice <= 200


def test_the_log_ratio_of_a_pixel_follows_from_its_value():
    image = np.zeros((200, 200))
    image[0, :5] = [0.0, 0.2, 0.4, 0.79, 0.9]
    ratios = log_ratio_maps(image)[0, 0, :5]
    assert ratios.dtype == np.float32
    assert ratios[0] == LOG_RATIO_FLOOR  # a black pixel: almost never on an outline
    # Below 0.8: outline density 2.5 v against noise 1.25 (and a line's 2.5 v, rarely).
    for value, ratio in zip([0.2, 0.4, 0.79], ratios[1:4], strict=True):
        on = 2.5 * value
        assert ratio == pytest.approx(np.log(on / ((1 - LINE_SHARE) * 1.25 + LINE_SHARE * on)))
    assert ratios[4] == pytest.approx(-np.log(LINE_SHARE))  # bright: a ship or a line
    with pytest.raises(ValueError, match="pixel values in"):
        log_ratio_maps(image + 2)


def test_corners_of_a_box_give_the_box_back():
    boxes = np.array([[100.0, 60.0, 0.4, 24.0, 37.3], [30.0, 150.0, 4.0, 35.0, 50.1]])
    corners = np.stack([_corners_of(*box, 1 / 3) for box in boxes])
    back = boxes_from_corners(corners)
    np.testing.assert_array_equal(back[:, [0, 1, 3]], boxes[:, [0, 1, 3]])  # whole px
    assert (rotated_iou(back, boxes) > 0.95).all()  # only the corners' rounding is lost


@pytest.fixture(scope="module")
def official_ships():
    np.random.seed(3)
    samples = [make_data(has_spaceship=True) for _ in range(24)]
    images = np.stack([image for image, _ in samples]).astype(np.float32)
    return images, np.stack([label for _, label in samples])


def test_the_fit_finds_ships_from_boxes_a_few_pixels_off(official_ships):
    images, labels = official_ships
    rng = np.random.default_rng(2)
    starts = labels.copy()
    starts[:, :2] += rng.normal(0, 2.0, (len(labels), 2))
    starts[:, 2] += rng.normal(0, 0.05, len(labels))
    starts[:, 3:] *= np.exp(rng.normal(0, 0.08, (len(labels), 2)))
    starts[: len(labels) // 4, 2] += np.pi  # the nose the wrong way: both are tried
    fits = fit_outlines(images, starts)
    before, after = rotated_iou(starts, labels), rotated_iou(fits.boxes, labels)
    assert np.median(after) > 0.93 > np.median(before)
    assert np.mean(after > 0.7) >= 0.9
    noses = np.cos(fits.boxes[:, 2] - labels[:, 2]) > 0
    assert noses.mean() >= 0.9  # the notch and wing tips show which end is the nose
    assert fits.corners.shape == (len(labels), 4, 2) and fits.log_ratios.shape == (len(labels),)
    # A ship's own outline explains its pixels far better than noise explains them.
    assert np.median(fits.log_ratios) > 20


def test_several_boxes_can_start_on_one_image(official_ships):
    images, labels = official_ships
    starts = np.stack([labels[0], labels[0] + [1.0, -1.0, 0.02, 1.0, 2.0], labels[1]])
    fits = fit_outlines(images[:2], starts, owners=np.array([0, 0, 1]))
    alone = fit_outlines(images[:1], starts[1:2])
    np.testing.assert_array_equal(fits.boxes[1], alone.boxes[0])
    assert (rotated_iou(fits.boxes, labels[[0, 0, 1]]) > 0.8).all()


def test_bad_starts_are_refused(official_ships):
    images, labels = official_ships
    with pytest.raises(ValueError, match="drop the NaN rows"):
        fit_outlines(images[:2], np.array([labels[0], [np.nan] * 5]))
    with pytest.raises(ValueError, match="pass owners"):
        fit_outlines(images[:2], labels[:3])
    with pytest.raises(ValueError, match="index the 2 images"):
        fit_outlines(images[:2], labels[:2], owners=np.array([0, 2]))
    with pytest.raises(ValueError, match="one per box"):
        fit_outlines(images[:2], labels[:2], owners=np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"boxes\[1\] has a width or height <= 0"):
        fit_outlines(images[:2], labels[:2] * [[1, 1, 1, 1, 1], [1, 1, 1, 0, 1]])
    with pytest.raises(ValueError, match=r"boxes\[0\] is centred more than 400 px away"):
        fit_outlines(images[:1], labels[:1] + [1e30, 0, 0, 0, 0])


def test_a_start_no_ship_could_fit_stays_put_and_is_never_judged_best(official_ships):
    images, labels = official_ships
    too_wide, too_narrow = labels[0] * [1, 1, 1, 0, 1] + [0, 0, 0, 60, 0], labels[0].copy()
    too_narrow[3] = 8.0
    fits = fit_outlines(images[:1], np.array([too_wide, too_narrow, labels[0]]), np.zeros(3, int))
    assert fits.log_ratios[0] == fits.log_ratios[1] == FAILED_FIT < fits.log_ratios[2]
    for start, fitted in zip((too_wide, too_narrow), fits.boxes[:2], strict=True):
        # no outline within reach: the corners stay where the start's step 3 put them
        assert np.hypot(*(fitted[:2] - start[:2])) < (CENTRE_SHIFT + 1) * np.sqrt(2) + 1
        assert abs(fitted[3] - start[3]) < 3
    judged = judged_scores(np.array([0.99, 0.99, 0.01]), fits.log_ratios, 0.05)
    assert np.argmax(judged) == 2


def test_the_judge_adds_the_weighted_log_ratio_to_the_verifiers_log_odds():
    scores = np.array([0.5, 0.9, 0.0, 1.0])
    ratios = np.array([10.0, -20.0, 0.0, 0.0])
    judged = judged_scores(scores, ratios, 0.05)
    assert judged[0] == pytest.approx(0.5)
    assert judged[1] == pytest.approx(np.log(9) - 1.0)
    assert np.isfinite(judged).all() and judged[2] < -15 and judged[3] > 15  # clipped
    assert check_weight(0) == 0.0
    for bad in (-0.1, np.nan, True, "0.05"):
        with pytest.raises(ValueError, match="outline_weight"):
            check_weight(bad)
