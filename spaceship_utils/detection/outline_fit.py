"""The generator's own model of a ship, fitted to the image: an exact last look at a box.

`make_data` draws a ship as four digital line segments (skimage's `polygon_perimeter`,
Bresenham lines) between the rounded corners of the arrow, nose, left wing tip, tail
notch and right wing tip, and gives each outline pixel a value U(0, 1); the background
is U(0, 0.8) noise, and six noise lines get U(0, 1) pixels too. So for a pixel of value
v, how much more likely an outline pixel is than a background one is known exactly
(`log_ratio_maps`): an outline pixel is max(U(0, 1), U(0, 0.8)), density 2.5·v up to
0.8 and 1 above; a background pixel is U(0, 0.8), density 1.25, unless a noise line
passes (a share `LINE_SHARE` of the pixels), and only a line or a ship can be brighter
than 0.8. The log-likelihood ratio of a whole outline is the sum of its pixels' log
ratios (here edge by edge, so the pixel or two that two edges share next to a sharp
wing tip count twice), and the outline that maximises it, plus the generator's priors on the ship's
shape, is the best box these pixels allow.

The sum is sharply peaked: an edge one pixel off loses most of its bright pixels. A box
of the refined detector is usually close enough, and `fit_outlines` climbs from it in
four steps (all on the CPU with Numba):

1. a grid of centres (`CENTRE_SHIFT` px each way) and axes (`AXIS_STEPS` turns of
   `AXIS_STEP` rad), both noses;
2. a grid of sizes, the width in whole px as the generator draws it, the height changed
   about the centre, the nose or the wing line;
3. the centre and axis again, finer;
4. the corners themselves: nose and wing tips each within `CORNER_WINDOW` px, jointly
   with a prior that keeps the wings symmetric, the notch anywhere on the axis (exact
   dynamic programming over the outline's cycle), repeated until the nose and the wing
   tips stop moving (the notch follows them).

The box is read off the corners it settles on; the generator's centre and width are
integers, and the box's are rounded to them. A noise line lying along a hypothesised
edge looks like an outline to this model, so on its own it is a poor judge between
far-apart boxes; chapter 11 uses it to propose one more candidate per restart start
and as a small term in the verifier's choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from spaceship_utils.core.validation import IMAGE_SIZE, check_boxes, check_images, has_box
from spaceship_utils.data.generator import LENGTH_TO_WIDTH, SIZE_RANGE, TAIL_TO_LENGTH
from spaceship_utils.data.pixel_model import noise_pixel_density, ship_pixel_density

LINE_SHARE = 0.0141
"""Share of an image's pixels on one of its six noise lines: each line has max(|dx|, |dy|)
+ 1 pixels, 94.3 on average for end points drawn from [0, 200) (overlaps ignored)."""


LOG_RATIO_FLOOR = -6.0
"""The log ratio of a pixel darker than about 0.001: evidence against an outline there,
bounded so that one dark pixel cannot outvote the rest."""


CENTRE_SHIFT = 4
"""Step 1 tries centres up to this many px from the box's, along x and y."""


AXIS_STEPS = 9
"""Step 1 tries this many axes around the box's (and as many with the nose reversed)."""


AXIS_STEP = 0.025
"""Radians between two axes in step 1 (1.4°); step 3 uses half of it."""


SIZE_STEPS = (8, 8)
"""Step 2 tries the width in whole px up to 8 either side and the height up to 8 steps of
`HEIGHT_STEP` either side (32 %)."""


HEIGHT_STEP = 0.04
"""Relative height change between two heights in step 2."""


TAIL_RATIOS = (0.15, 0.25, 1 / 3, 0.42, 0.52)
"""Notch positions (fractions of the height from the wing line) that steps 1 to 3 try."""


CORNER_WINDOW = 2
"""Step 4 moves the nose and each wing tip up to this many px along x and y in each round."""


CORNER_ROUNDS = 6
"""Step 4 stops after this many rounds if a corner is still moving."""


SYMMETRY_PX = 0.6
"""Standard deviation (px) of how far the wing tips' line may stray from square to the
axis: the rounding of two corners to whole pixels, a little wider."""


_WIDTH_LIMITS = (SIZE_RANGE[0] - 1.0, SIZE_RANGE[1] + 0.5)


# The wing tips' distance step 4 allows: the generator's widths, 18 to 36 px, measured
# between two corners rounded to whole px, which can shorten it by about 1 px or, for a
# box turned by a few degrees, lengthen it by about half of one.
_NEVER = -1e18


FAILED_FIT = _NEVER
"""The log ratio `fit_outlines` gives a start with no outline of the generator's widths
within reach (a start far narrower or wider than any ship): its corners stay where the
start put them, and a judge adding this (times any weight above 0) never picks it."""


CENTRE_LIMIT = 2 * IMAGE_SIZE
"""How far (px) from the image's origin `fit_outlines` accepts a start's centre."""


def log_ratio_maps(images: np.ndarray) -> np.ndarray:
    """Raw images (N, 200, 200) in [0, 1] -> (N, 200, 200) float32: per pixel, the log of
    how much more likely its value is on a ship's outline than off it (chapter 2's
    densities; off the outline, a pixel is on a noise line with probability `LINE_SHARE`,
    where it has an outline pixel's density)."""
    values = check_images(images).astype(np.float64)
    on = ship_pixel_density(values)
    off = (1 - LINE_SHARE) * noise_pixel_density(values) + LINE_SHARE * on
    with np.errstate(divide="ignore"):
        ratios = np.log(on) - np.log(off)
    return np.maximum(ratios, LOG_RATIO_FLOOR).astype(np.float32)


@dataclass
class OutlineFits:
    """What `fit_outlines` found for (K,) boxes."""

    boxes: np.ndarray
    """(K, 5) the fitted boxes (x, y, yaw, width, height) in px and rad."""
    log_ratios: np.ndarray
    """(K,) the log-likelihood ratio of the fitted outline against no ship there, plus
    the log priors of its shape and the wing symmetry prior; `FAILED_FIT` where no outline
    was within reach of the start."""
    corners: np.ndarray
    """(K, 4, 2) int: the fitted nose, left wing tip, notch and right wing tip (x, y)."""


def fit_outlines(
    images: np.ndarray, boxes: np.ndarray, owners: np.ndarray | None = None
) -> OutlineFits:
    """Fit the generator's outline to images (N, 200, 200) from boxes (K, 5), box k on
    image `owners[k]` (default: box k on image k)."""
    return fit_outlines_to_maps(log_ratio_maps(images), boxes, owners)


def fit_outlines_to_maps(
    maps: np.ndarray, boxes: np.ndarray, owners: np.ndarray | None = None
) -> OutlineFits:
    """`fit_outlines` on log-ratio maps (N, 200, 200) instead of images: those of
    `log_ratio_maps`, or maps with some pixels made neutral (0), e.g. along the noise
    lines (`line_search.line_free_log_ratios`)."""
    maps = np.asarray(maps)
    if maps.ndim != 3 or maps.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(
            f"maps must be (N, {IMAGE_SIZE}, {IMAGE_SIZE}) log ratios, got shape {maps.shape}"
        )
    if not np.isfinite(maps).all():
        raise ValueError("maps hold NaN or infinite log ratios")
    maps = np.ascontiguousarray(maps, dtype=np.float32)
    boxes = check_boxes(boxes, "boxes")
    if not has_box(boxes).all():
        raise ValueError("every box needs five numbers to start from: drop the NaN rows first")
    if np.any(boxes[:, 3:] <= 0):
        row = int(np.flatnonzero((boxes[:, 3:] <= 0).any(axis=1))[0])
        raise ValueError(f"boxes[{row}] has a width or height <= 0: {boxes[row].tolist()}")
    if np.any(np.abs(boxes[:, :2]) > CENTRE_LIMIT):
        row = int(np.flatnonzero((np.abs(boxes[:, :2]) > CENTRE_LIMIT).any(axis=1))[0])
        raise ValueError(
            f"boxes[{row}] is centred more than {CENTRE_LIMIT} px away: {boxes[row].tolist()}"
        )
    owners = _checked_owners(owners, len(boxes), len(maps))
    scores, corners = _fit_many(maps, owners, np.ascontiguousarray(boxes))
    return OutlineFits(boxes=boxes_from_corners(corners), log_ratios=scores, corners=corners)


def _checked_owners(owners, count: int, images: int) -> np.ndarray:
    """`owners` as int64 (count,), each an index into the images, or a ValueError."""
    if owners is None:
        if count != images:
            raise ValueError(
                f"got {count} boxes for {images} images: pass owners, the image of each box"
            )
        return np.arange(count, dtype=np.int64)
    owners = np.asarray(owners)
    if owners.shape != (count,) or not np.issubdtype(owners.dtype, np.integer):
        raise ValueError(
            f"owners must be {count} integers, one per box, got shape {owners.shape} of "
            f"{owners.dtype}"
        )
    if count and (owners.min() < 0 or owners.max() >= images):
        raise ValueError(
            f"owners must index the {images} images, got {owners.min()}..{owners.max()}"
        )
    return owners.astype(np.int64)


def boxes_from_corners(corners: np.ndarray) -> np.ndarray:
    """Outline corners (K, 4, 2) (nose, left wing tip, notch, right wing tip; x, y) -> the
    boxes (K, 5) they stand for: centre halfway between the nose and the wing tips'
    midpoint, yaw towards the nose, height from that midpoint to the nose, width the wing
    tips' distance across the axis; centre and width rounded to whole px, as the generator
    draws them."""
    corners = np.asarray(corners, dtype=np.float64)
    nose, left, right = corners[:, 0], corners[:, 1], corners[:, 3]
    tail = (left + right) / 2
    axis = nose - tail
    yaw = np.arctan2(axis[:, 0], axis[:, 1])
    across = np.stack([np.cos(yaw), -np.sin(yaw)], axis=-1)
    width = np.abs(((left - right) * across).sum(axis=-1))
    centre = np.round((nose + tail) / 2)
    return np.column_stack(
        [centre, np.mod(yaw, 2 * np.pi), np.round(width), np.hypot(axis[:, 0], axis[:, 1])]
    )


# ---- compiled core -------------------------------------------------------------------
# Corners are (x, y) integer pixels, maps are indexed [y, x], as images are.


@njit(cache=True)
def _segment_sum(ratios, x0, y0, x1, y1):
    """Sum of `ratios` over skimage.draw.line's pixels from (x0, y0) to (x1, y1), the end
    pixel left out (it starts the next edge), pixels outside the image counting 0."""
    size = ratios.shape[0]
    steep = abs(y1 - y0) > abs(x1 - x0)
    a, b, a1, b1 = (y0, x0, y1, x1) if steep else (x0, y0, x1, y1)
    da, db = abs(a1 - a), abs(b1 - b)
    sa = 1 if a1 > a else -1
    sb = 1 if b1 > b else -1
    error = 2 * db - da
    total = 0.0
    for _ in range(da):
        x, y = (b, a) if steep else (a, b)
        if 0 <= x < size and 0 <= y < size:
            total += ratios[y, x]
        while error >= 0:
            b += sb
            error -= 2 * da
        a += sa
        error += 2 * db
    return total


@njit(cache=True)
def _corners_of(x, y, yaw, width, height, tail):
    """The generator's rounded outline corners (4, 2) of a box and notch position."""
    cos, sin = np.cos(yaw), np.sin(yaw)
    local_x = (0.0, -width / 2, 0.0, width / 2)
    local_y = (height / 2, -height / 2, height * tail - height / 2, -height / 2)
    corners = np.empty((4, 2), np.int64)
    for k in range(4):
        corners[k, 0] = np.int64(np.round(local_x[k] * cos + local_y[k] * sin + x))
        corners[k, 1] = np.int64(np.round(-local_x[k] * sin + local_y[k] * cos + y))
    return corners


@njit(cache=True)
def _shape_prior(width, height):
    """Log prior (up to a constant) of a ship's height / width ratio."""
    return -0.5 * ((height / width - LENGTH_TO_WIDTH[0]) / LENGTH_TO_WIDTH[1]) ** 2


@njit(cache=True)
def _tail_prior(tail):
    """Log prior (up to a constant) of the notch position."""
    return -0.5 * ((tail - TAIL_TO_LENGTH[0]) / TAIL_TO_LENGTH[1]) ** 2


@njit(cache=True)
def _outline_score(ratios, x, y, yaw, width, height):
    """Log ratio of a box's whole outline, the notch at the best of `TAIL_RATIOS`, plus
    the shape priors."""
    c = _corners_of(x, y, yaw, width, height, 1 / 3)
    front = _segment_sum(ratios, c[0, 0], c[0, 1], c[1, 0], c[1, 1]) + _segment_sum(
        ratios, c[3, 0], c[3, 1], c[0, 0], c[0, 1]
    )
    best = _NEVER
    for tail in TAIL_RATIOS:
        c = _corners_of(x, y, yaw, width, height, tail)
        score = (
            _segment_sum(ratios, c[1, 0], c[1, 1], c[2, 0], c[2, 1])
            + _segment_sum(ratios, c[2, 0], c[2, 1], c[3, 0], c[3, 1])
            + _tail_prior(tail)
        )
        best = max(best, score)
    return front + best + _shape_prior(width, height)


@njit(cache=True)
def _best_placement(ratios, box, shift, turns, step, both_noses):
    """Steps 1 and 3: the best centre (whole px within `shift`) and axis (`turns` steps of
    `step` rad, with the nose reversed too if `both_noses`) for the box's sizes."""
    best, found = _NEVER, box.copy()
    cx, cy = np.round(box[0]), np.round(box[1])
    for flip in range(2 if both_noses else 1):
        for k in range(turns):
            yaw = box[2] + np.pi * flip + step * (k - (turns - 1) / 2)
            for dx in range(-shift, shift + 1):
                for dy in range(-shift, shift + 1):
                    score = _outline_score(ratios, cx + dx, cy + dy, yaw, box[3], box[4])
                    if score > best:
                        best = score
                        found[0] = cx + dx
                        found[1] = cy + dy
                        found[2] = yaw
    return found


@njit(cache=True)
def _best_sizes(ratios, box):
    """Step 2: the best width (whole px) and height around the box's, the height changed
    about the centre, the nose or the wing line (a ship cut by the image's edge is often
    seen too short, with one end right)."""
    best, found = _NEVER, box.copy()
    nose_x, nose_y = np.sin(box[2]), np.cos(box[2])
    for dw in range(-SIZE_STEPS[0], SIZE_STEPS[0] + 1):
        width = np.round(box[3]) + dw
        if width < SIZE_RANGE[0] or width >= SIZE_RANGE[1]:
            continue
        for k in range(-SIZE_STEPS[1], SIZE_STEPS[1] + 1):
            height = box[4] * (1 + HEIGHT_STEP * k)
            for anchor in (0.0, -0.5, 0.5):  # centre kept, nose kept, wing line kept
                x = box[0] + anchor * (height - box[4]) * nose_x
                y = box[1] + anchor * (height - box[4]) * nose_y
                score = _outline_score(ratios, x, y, box[2], width, height)
                if score > best:
                    best = score
                    found[0], found[1], found[3], found[4] = x, y, width, height
    return found


@njit(cache=True)
def _square(centre, radius):
    """The pixels (M, 2) within `radius` of `centre` along x and y."""
    side = 2 * radius + 1
    points = np.empty((side * side, 2), np.int64)
    k = 0
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            points[k, 0], points[k, 1] = centre[0] + dx, centre[1] + dy
            k += 1
    return points


@njit(cache=True)
def _notch_candidates(nose, left, right):
    """Pixels (M, 2) where the notch may be, on the axis of these corners and 1 px either
    side, from 3 % to 70 % of the height from the wing line, and each one's log prior."""
    tail_x, tail_y = (left[0] + right[0]) / 2.0, (left[1] + right[1]) / 2.0
    ax, ay = nose[0] - tail_x, nose[1] - tail_y
    height = max(np.sqrt(ax * ax + ay * ay), 1.0)
    ux, uy = ax / height, ay / height
    steps = int(0.67 * height) + 1
    points = np.empty((3 * steps, 2), np.int64)
    priors = np.empty(3 * steps)
    k = 0
    for i in range(steps):
        along = 0.03 * height + i
        for side in (-1, 0, 1):
            points[k, 0] = np.int64(np.round(tail_x + along * ux + side * uy))
            points[k, 1] = np.int64(np.round(tail_y + along * uy - side * ux))
            priors[k] = _tail_prior(along / height)
            k += 1
    return points, priors


@njit(cache=True)
def _best_corners(ratios, corners, radius):
    """Step 4, one round: the best nose, wing tips (each within `radius` px of the current
    ones, jointly, with the symmetry and shape priors) and notch (on the current axis), by
    exact dynamic programming over the cycle nose -> left -> notch -> right -> nose."""
    noses, lefts, rights = (
        _square(corners[0], radius),
        _square(corners[1], radius),
        _square(corners[3], radius),
    )
    notches, notch_priors = _notch_candidates(corners[0], corners[1], corners[3])
    m, c = len(noses), len(notches)
    nose_left = np.empty((m, m))
    right_nose = np.empty((m, m))
    for i in range(m):
        for j in range(m):
            nose_left[i, j] = _segment_sum(
                ratios, noses[i, 0], noses[i, 1], lefts[j, 0], lefts[j, 1]
            )
            right_nose[j, i] = _segment_sum(
                ratios, rights[j, 0], rights[j, 1], noses[i, 0], noses[i, 1]
            )
    left_notch = np.empty((m, c))
    notch_right = np.empty((c, m))
    for i in range(m):
        for k in range(c):
            left_notch[i, k] = notch_priors[k] + _segment_sum(
                ratios, lefts[i, 0], lefts[i, 1], notches[k, 0], notches[k, 1]
            )
            notch_right[k, i] = _segment_sum(
                ratios, notches[k, 0], notches[k, 1], rights[i, 0], rights[i, 1]
            )
    # The notch's best for every pair of wing tips.
    rear = np.full((m, m), _NEVER)
    rear_notch = np.zeros((m, m), np.int64)
    for a in range(m):
        for k in range(c):
            for b in range(m):
                score = left_notch[a, k] + notch_right[k, b]
                if score > rear[a, b]:
                    rear[a, b], rear_notch[a, b] = score, k
    best, found = _NEVER, (m // 2, m // 2, m // 2)  # none within the limits: stay put
    for a in range(m):
        for b in range(m):
            span_x, span_y = lefts[a, 0] - rights[b, 0], lefts[a, 1] - rights[b, 1]
            width = np.sqrt(span_x * span_x + span_y * span_y)
            if width < _WIDTH_LIMITS[0] or width > _WIDTH_LIMITS[1]:
                continue
            tail_x, tail_y = (lefts[a, 0] + rights[b, 0]) / 2.0, (lefts[a, 1] + rights[b, 1]) / 2.0
            for n in range(m):
                ax, ay = noses[n, 0] - tail_x, noses[n, 1] - tail_y
                height = np.sqrt(ax * ax + ay * ay)
                if height < 1.0:
                    continue
                skew = (span_x * ax + span_y * ay) / height  # the wing line's lean, px
                score = (
                    nose_left[n, a]
                    + right_nose[b, n]
                    + rear[a, b]
                    - 0.5 * (skew / SYMMETRY_PX) ** 2
                    + _shape_prior(width, height)
                )
                if score > best:
                    best, found = score, (n, a, b)
    n, a, b = found
    fitted = np.empty((4, 2), np.int64)
    fitted[0] = noses[n]
    fitted[1] = lefts[a]
    fitted[2] = notches[rear_notch[a, b]]
    fitted[3] = rights[b]
    return best, fitted


@njit(cache=True)
def _fit_one(ratios, box):
    """The four steps for one box: (log ratio, corners (4, 2))."""
    placed = _best_placement(ratios, box, CENTRE_SHIFT, AXIS_STEPS, AXIS_STEP, True)
    sized = _best_sizes(ratios, placed)
    fine = _best_placement(ratios, sized, 1, 5, AXIS_STEP / 2, False)
    corners = _corners_of(fine[0], fine[1], fine[2], fine[3], fine[4], 1 / 3)
    score = _NEVER
    for _ in range(CORNER_ROUNDS):
        score, moved = _best_corners(ratios, corners, CORNER_WINDOW)
        same = True
        for k in (0, 1, 3):
            same = same and moved[k, 0] == corners[k, 0] and moved[k, 1] == corners[k, 1]
        corners = moved
        if same:
            break
    return score, corners


@njit(cache=True, parallel=True)
def _fit_many(maps, owners, boxes):
    """`_fit_one` for every box k on map `owners[k]`, on all cores: scores (K,), corners
    (K, 4, 2)."""
    scores = np.empty(len(boxes))
    corners = np.empty((len(boxes), 4, 2), np.int64)
    for k in prange(len(boxes)):
        score, fitted = _fit_one(maps[owners[k]], boxes[k])
        scores[k] = score
        corners[k] = fitted
    return scores, corners
