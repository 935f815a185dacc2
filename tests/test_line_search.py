import numpy as np
import pytest
from skimage.draw import line

from spaceship_utils.data.generator import make_layers
from spaceship_utils.detection.line_search import (
    LINE_EXTENSION,
    LONG_LINE,
    find_lines,
    line_free_log_ratios,
)
from spaceship_utils.detection.outline_fit import log_ratio_maps


def test_a_long_bright_line_is_found_end_to_end_and_made_neutral():
    image = np.full((200, 200), 0.4, np.float32)
    rows, cols = line(30, 20, 120, 180)  # from (x, y) = (20, 30) to (180, 120)
    image[rows, cols] = 0.95
    lines = find_lines(image)
    assert len(lines) == 1
    x0, y0, x1, y1, votes, extent = lines[0]
    assert {(x0, y0), (x1, y1)} == {(20.0, 30.0), (180.0, 120.0)}
    assert votes == len(rows)
    assert extent == pytest.approx(np.hypot(160, 90), rel=1e-3)  # measured along a 0.5° bin
    free = line_free_log_ratios(image)[0]
    assert (free[rows, cols] == 0).all()
    plain = log_ratio_maps(image)[0]
    ys, xs = np.mgrid[:200, :200]
    along = np.clip(((xs - 20) * 160 + (ys - 30) * 90) / (160**2 + 90**2), 0, 1)
    nearest_x, nearest_y = 20 + along * 160, 30 + along * 90
    away = np.hypot(xs - nearest_x, ys - nearest_y) > LINE_EXTENSION + 1  # px from the segment
    np.testing.assert_array_equal(free[away], plain[away])


def test_a_short_line_is_found_but_kept():
    image = np.full((200, 200), 0.4, np.float32)
    rows, cols = line(100, 50, 100, 50 + int(LONG_LINE) - 10)
    image[rows, cols] = 0.95
    assert find_lines(image)[0, 5] < LONG_LINE
    np.testing.assert_array_equal(line_free_log_ratios(image), log_ratio_maps(image))


def test_most_noise_line_pixels_go_and_most_outline_pixels_stay():
    np.random.seed(3)
    layers = [make_layers() for _ in range(40)]
    free = line_free_log_ratios(np.stack([layer.image for layer in layers]))
    lines = np.stack([layer.lines for layer in layers]) > 0.8
    outline = (np.stack([layer.ship for layer in layers]) > 0.8) & ~lines
    assert np.mean(free[lines] == 0) > 0.85
    assert np.mean(free[outline] == 0) < 0.25


def test_find_lines_takes_one_image():
    with pytest.raises(ValueError, match="one image, got 2"):
        find_lines(np.zeros((2, 200, 200)))
    assert find_lines(np.zeros((200, 200))).shape == (0, 6)
