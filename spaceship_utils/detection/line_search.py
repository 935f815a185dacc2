"""Find an image's long bright noise lines, so that the outline likelihood can ignore them.

Only a noise line or a ship can be brighter than `NOISE_LEVEL` (0.8): the background
noise never is. A noise line runs straight for up to the whole image, a ship's edge for a
few dozen pixels. So a Hough transform over the bright pixels finds the lines: each bright
pixel votes for every line through it (`HOUGH_ANGLES` directions, 1 px steps of distance
from the origin), the best-voted line takes the bright pixels within `MEMBER_DISTANCE`
plus half a bin of it (1.5 px), and the search repeats on the pixels left, up to
`MAX_LINES` times, while a line still gathers `MIN_VOTES` pixels.

`line_free_log_ratios` then sets the outline log ratio of `outline_fit.log_ratio_maps` to
0 (no evidence either way) along every line whose bright pixels span at least
`LONG_LINE` px: there, a fitted outline can no longer borrow a noise line's bright
pixels. The price: a ship's edge that lies along such a line, or a long ship's edge whose
bright pixels span `LONG_LINE` themselves, is made neutral too (on 40 generated images,
about one bright outline pixel in seven, against nine bright line pixels in ten; see the
tests)."""

from __future__ import annotations

import numpy as np
from numba import njit

from spaceship_utils.core.validation import check_images
from spaceship_utils.data.generator import NOISE_LEVEL
from spaceship_utils.detection.outline_fit import log_ratio_maps

HOUGH_ANGLES = 360
"""Directions the Hough transform tries, over half a turn (0.5° apart)."""


MIN_VOTES = 6
"""Bright pixels a line needs to count as found."""


MAX_LINES = 10
"""Lines searched for per image at most (the generator draws six; a ship's edges may
take the other places)."""


MEMBER_DISTANCE = 1.0
"""How far (px) a bright pixel may lie from a found line and still belong to it, before
the half bin of distance the vote's rounding adds (1.5 px in all)."""


LONG_LINE = 55.0
"""How far (px) apart a line's outermost bright pixels must be for the line to be made
neutral: longer than all but the longest edges of the generator's ships."""


LINE_EXTENSION = 6.0
"""How far (px) beyond its outermost bright pixels a neutral line extends along itself."""


NEUTRAL_HALF_WIDTH = 0.8
"""How far (px) on either side of a line's fitted centre the pixels are made neutral."""


def find_lines(image: np.ndarray) -> np.ndarray:
    """The lines through the bright pixels of one raw image (200, 200), best first: an
    array (L, 6) of each line's outermost bright pixels (x0, y0, x1, y1, px), its votes
    (how many bright pixels it took) and its extent (px between those two pixels)."""
    image = check_images(image)
    if len(image) != 1:
        raise ValueError(f"find_lines takes one image, got {len(image)}")
    ys, xs = np.nonzero(image[0] > NOISE_LEVEL)
    return _hough_lines(xs.astype(np.float64), ys.astype(np.float64), image.shape[1])


def line_free_log_ratios(images: np.ndarray) -> np.ndarray:
    """`outline_fit.log_ratio_maps` of raw images (N, 200, 200), with the pixels along
    each image's long lines (`find_lines`, extent >= `LONG_LINE`) set to 0: (N, 200, 200)
    float32."""
    images = check_images(images)
    maps = log_ratio_maps(images)
    for k, image in enumerate(images):
        lines = find_lines(image)
        long = lines[lines[:, 5] >= LONG_LINE]
        bright = np.ascontiguousarray(image > NOISE_LEVEL)
        _neutralise(maps[k], bright, long)
    return maps


@njit(cache=True)
def _hough_lines(xs, ys, size):
    """`find_lines` for the bright pixels (xs, ys) of an image `size` px wide."""
    count = len(xs)
    taken = np.zeros(count, np.bool_)
    angles = np.arange(HOUGH_ANGLES) * np.pi / HOUGH_ANGLES
    cos, sin = np.cos(angles), np.sin(angles)
    reach = int(np.ceil(size * np.sqrt(2.0))) + 1  # |x cos + y sin| never exceeds it
    lines = np.zeros((MAX_LINES, 6))
    found = 0
    for _ in range(MAX_LINES):
        votes = np.zeros((HOUGH_ANGLES, 2 * reach + 1), np.int64)
        for i in range(count):
            if not taken[i]:
                for k in range(HOUGH_ANGLES):
                    votes[k, int(np.round(xs[i] * cos[k] + ys[i] * sin[k])) + reach] += 1
        # a digital line's pixels straddle two distance bins: score a bin with its better
        # neighbour
        best, best_angle, best_bin = 0, 0, 0
        for k in range(HOUGH_ANGLES):
            for r in range(1, 2 * reach):
                score = votes[k, r] + max(votes[k, r - 1], votes[k, r + 1])
                if score > best:
                    best, best_angle, best_bin = score, k, r
        if best < MIN_VOTES:
            break
        distance = best_bin - reach
        members = np.zeros(count, np.bool_)
        for i in range(count):
            offset = xs[i] * cos[best_angle] + ys[i] * sin[best_angle] - distance
            members[i] = not taken[i] and abs(offset) <= MEMBER_DISTANCE + 0.5
        if members.sum() < MIN_VOTES:
            break
        along_x, along_y = -sin[best_angle], cos[best_angle]
        first, last, low, high = -1, -1, np.inf, -np.inf
        for i in np.flatnonzero(members):
            along = xs[i] * along_x + ys[i] * along_y
            if along < low:
                low, first = along, i
            if along > high:
                high, last = along, i
            taken[i] = True
        lines[found, 0], lines[found, 1] = xs[first], ys[first]
        lines[found, 2], lines[found, 3] = xs[last], ys[last]
        lines[found, 4], lines[found, 5] = members.sum(), high - low
        found += 1
    return lines[:found]


@njit(cache=True)
def _neutralise(ratios, bright, lines):
    """Set `ratios` (S, S) to 0 along each line (L, 6) of `find_lines`, in place: the line
    is refitted (total least squares) to the bright pixels within 1.5 px of the segment
    and `LINE_EXTENSION` beyond its ends, and the pixels within `NEUTRAL_HALF_WIDTH` of
    it, up to `LINE_EXTENSION` beyond its outermost bright pixels, are made neutral."""
    size = ratios.shape[0]
    for j in range(len(lines)):
        x0, y0, x1, y1 = lines[j, 0], lines[j, 1], lines[j, 2], lines[j, 3]
        length = np.hypot(x1 - x0, y1 - y0)
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        left = int(max(0, min(x0, x1) - LINE_EXTENSION - 2))
        right = int(min(size - 1, max(x0, x1) + LINE_EXTENSION + 2))
        top = int(max(0, min(y0, y1) - LINE_EXTENSION - 2))
        bottom = int(min(size - 1, max(y0, y1) + LINE_EXTENSION + 2))
        near = np.zeros((bottom - top + 1, right - left + 1), np.bool_)
        n, sx, sy, sxx, syy, sxy = 0, 0.0, 0.0, 0.0, 0.0, 0.0
        for y in range(top, bottom + 1):
            for x in range(left, right + 1):
                across = -(x - x0) * uy + (y - y0) * ux
                along = (x - x0) * ux + (y - y0) * uy
                if bright[y, x] and abs(across) <= 1.5:
                    if -LINE_EXTENSION <= along <= length + LINE_EXTENSION:
                        near[y - top, x - left] = True
                        n += 1
                        sx, sy = sx + x, sy + y
                        sxx, syy, sxy = sxx + x * x, syy + y * y, sxy + x * y
        tx, ty, low, high = ux, uy, 0.0, length
        if n >= 3:  # the best line through them: their mean, along their main axis
            cx, cy = sx / n, sy / n
            vxx, vyy, vxy = sxx / n - cx * cx, syy / n - cy * cy, sxy / n - cx * cy
            angle = 0.5 * np.arctan2(2 * vxy, vxx - vyy)
            tx, ty = np.cos(angle), np.sin(angle)
            low, high = np.inf, -np.inf
            for y in range(top, bottom + 1):
                for x in range(left, right + 1):
                    if near[y - top, x - left]:
                        position = (x - cx) * tx + (y - cy) * ty
                        low, high = min(low, position), max(high, position)
            x0, y0 = cx, cy
        for y in range(top, bottom + 1):
            for x in range(left, right + 1):
                across = -(x - x0) * ty + (y - y0) * tx
                along = (x - x0) * tx + (y - y0) * ty
                if abs(across) <= NEUTRAL_HALF_WIDTH and (
                    low - LINE_EXTENSION <= along <= high + LINE_EXTENSION
                ):
                    ratios[y, x] = 0.0
