"""A second stage for the detector: correct a proposed box on a crop of the image.

The detector reads each box off a 25×25 grid, and chapter 8 measures where that loses the
score: centres a few pixels off, axes a few degrees off, sizes a few per cent off. The
refiner looks again, at full resolution and only where the ship is: it cuts a square
window around a proposed box, turned so that the box's height axis runs down the window's
rows and scaled so that the window's side is `CROP_MARGIN` times the box's larger side, and
predicts the correction from that window.

Everything is measured in the proposal's own frame, so the refiner sees every ship the same
way up and at the same size:

- (du, dv): the true centre minus the proposal's, across and along the proposal's axis, as
  a fraction of the window's side;
- log(w / side), log(h / side): the true box's size as a fraction of the window's side,
  which the refiner can see (not relative to the proposal's width and height: the window
  is scaled by the proposal's larger side, so its other side is invisible in the window);
- the turn from the proposal's axis to the true axis, in (-pi/2, pi/2] (the nose is left to
  the detector), as the point (cos 2·turn, sin 2·turn): two axes 179° apart are 1° apart,
  and so are their points, where a plain angle would jump from +pi/2 to -pi/2.

To train it, proposals come from the true boxes with random errors of the detector's size
(`PROPOSAL_NOISE`), a share of them (`WILD_SHARE`) with an axis anywhere, as the detector's
worst boxes have, and a share (`FLIP_SHARE`) with the nose the wrong way; so the refiner
trains on fresh generated images like every other network here, without running the
detector. It starts on clean outlines (`CLEAN_WINDOWS`): a curriculum, without which it
does not learn at all.
"""

from __future__ import annotations

import numpy as np

from spaceship_utils.core.geometry import wrap_angle
from spaceship_utils.core.validation import (
    IMAGE_SIZE,
    check_boxes,
    check_images,
    check_same_length,
    has_box,
)
from spaceship_utils.data.preprocessing import THRESHOLD

CROP_SIZE = 64
"""Pixels on each side of the refiner's window."""


CROP_MARGIN = 1.5
"""The window's side over the proposal's larger side: room for the true box around it."""


PROPOSAL_NOISE = (3.0, 0.15, 0.12)
"""Standard deviations of a training proposal's errors: centre (px, each axis), axis (rad)
and log width and height. A little wider than the detector's median errors (2.8 px, 7°, 9 %)."""


WILD_SHARE = 0.3
"""Share of training proposals drawn like the detector's worst boxes: axis anywhere, twice the
centre and size errors. A tenth of the detector's boxes are more than 35° off the true axis;
a refiner trained only on `PROPOSAL_NOISE` (a few degrees) leaves them as they are."""


FLIP_SHARE = 0.25
"""Share of training proposals whose nose points the wrong way (yaw + pi), so their window
shows the ship upside down. The detector gets the nose wrong on about one hit in twelve; a
refiner that never saw an upside-down window broke most of those boxes."""


CLEAN_WINDOWS = 20_000
"""The refiner's first training windows are cut from images without noise or lines. On
noisy windows from the start it never left the do-nothing answer (256,000 windows, no
gain over its proposals); after 20,000 clean ones it keeps learning on noisy windows."""


TARGET_COLUMNS = ("du", "dv", "log_w", "log_h", "cos_2turn", "sin_2turn")
"""Columns of `refinement_targets`, the refiner's six outputs: the centre's offset across
and along (window sides), log width and log height (window sides) and the axis turn as the
point (cos 2·turn, sin 2·turn)."""


LOG_SIZE_RANGE = (-3.0, 0.5)
"""Where predicted log sizes are clipped before the IoU (a box from 5 % to 165 % of the
window's side), so an untrained refiner's wild guesses keep the loss finite."""


def window_sides(boxes: np.ndarray) -> np.ndarray:
    """Side (px) of each proposal's window: `CROP_MARGIN` times its larger side. (N,)"""
    return CROP_MARGIN * np.maximum(boxes[:, 3], boxes[:, 4])


def crop_windows(
    images: np.ndarray, boxes: np.ndarray, size: int = CROP_SIZE, fit_box: bool = False
) -> np.ndarray:
    """Turned, scaled windows around proposals: images (N, 200, 200), boxes (N, 5) ->
    (N, size, size, 2) float32, the raw image and its `THRESHOLD` copy, sampled bilinearly.

    Window column j and row i sit at (u, v) = ((j + 0.5) / size - 0.5, (i + 0.5) / size - 0.5)
    times the window's side, u across the box and v along it (the nose towards the last
    rows when the yaw is the nose's). Outside the image counts as 0. The side is
    `window_sides` on both axes or, with `fit_box`, `CROP_MARGIN` times the box's own side
    on each (width across, height along): every box then fills the same square of its
    window, and the ship inside shows whether the box is too wide or too narrow.
    """
    images = check_images(images)
    boxes = check_boxes(boxes, "boxes")
    check_same_length(images=images, boxes=boxes)
    if not has_box(boxes).all():
        raise ValueError("every proposal needs a box: drop the NaN rows (no ship) first")
    steps = (np.arange(size) + 0.5) / size - 0.5
    if fit_box:
        across, along = CROP_MARGIN * boxes[:, 3], CROP_MARGIN * boxes[:, 4]
    else:
        across = along = window_sides(boxes)
    u = steps[None, None, :] * across[:, None, None]  # (N, 1, S)
    v = steps[None, :, None] * along[:, None, None]  # (N, S, 1)
    cos = np.cos(boxes[:, 2])[:, None, None]
    sin = np.sin(boxes[:, 2])[:, None, None]
    # Local (u, v) to image (x, y): the rotation `geometry.box_corners` uses.
    x = u * cos + v * sin + boxes[:, 0, None, None]
    y = -u * sin + v * cos + boxes[:, 1, None, None]
    return _bilinear_raw_and_thresholded(images, x, y)


def _bilinear_raw_and_thresholded(images: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """images (N, H, W) read at (x, y) pixel coordinates (N, S, S), pixel centres at
    integers: (N, S, S, 2) float32, the image and its thresholded copy. Each of the four
    neighbours is fetched once and thresholded on the spot, which is the same as reading
    a thresholded image."""
    count, height, width = images.shape
    x0, y0 = np.floor(x).astype(np.int32), np.floor(y).astype(np.int32)
    fx, fy = (x - x0).astype(np.float32), (y - y0).astype(np.float32)
    first = (np.arange(count, dtype=np.int32) * (height * width))[:, None, None]
    flat = images.reshape(-1)
    out = np.zeros(x.shape + (2,), dtype=np.float32)
    for dy, weight_y in ((0, 1 - fy), (1, fy)):
        for dx, weight_x in ((0, 1 - fx), (1, fx)):
            xs, ys = x0 + dx, y0 + dy
            inside = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
            at = first + np.clip(ys, 0, height - 1) * width + np.clip(xs, 0, width - 1)
            values = flat.take(at)
            weight = np.where(inside, weight_x * weight_y, 0.0).astype(np.float32)
            out[..., 0] += values * weight
            out[..., 1] += np.where(values >= THRESHOLD, values, 0.0) * weight
    return out


def refinement_targets(proposals: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """What the refiner should answer for each proposal (N, 5) of a ship (N, 5): (N, 6)
    float32 in the order of `TARGET_COLUMNS`."""
    proposals = check_boxes(proposals, "proposals")
    labels = check_boxes(labels, "labels")
    check_same_length(proposals=proposals, labels=labels)
    if not (has_box(proposals) & has_box(labels)).all():
        raise ValueError("refinement targets need a proposal and a true box in every row")
    side = window_sides(proposals)
    cos, sin = np.cos(proposals[:, 2]), np.sin(proposals[:, 2])
    dx, dy = labels[:, 0] - proposals[:, 0], labels[:, 1] - proposals[:, 1]
    across = (dx * cos - dy * sin) / side  # the inverse of the window's rotation
    along = (dx * sin + dy * cos) / side
    turn = _axis_turn(labels[:, 2] - proposals[:, 2])
    return np.column_stack(
        [
            across,
            along,
            np.log(labels[:, 3] / side),
            np.log(labels[:, 4] / side),
            np.cos(2 * turn),
            np.sin(2 * turn),
        ]
    ).astype(np.float32)


def _axis_turn(difference: np.ndarray) -> np.ndarray:
    """An angle difference as the turn between two axes (nose ignored), in (-pi/2, pi/2]."""
    return np.pi / 2 - wrap_angle(np.pi / 2 - difference, np.pi)


def correction_turns(corrections: np.ndarray) -> np.ndarray:
    """The axis turn (N,) in (-pi/2, pi/2] (rad) of refiner outputs or targets (N, 6)."""
    return np.arctan2(corrections[:, 5], corrections[:, 4]) / 2


def window_frame_boxes(corrections: np.ndarray) -> np.ndarray:
    """Refiner outputs or targets (N, 6) -> boxes (N, 5) in the window's frame, in window
    sides: centre (u, v) from the window's middle, turn, width, height (log sizes clipped to
    `LOG_SIZE_RANGE`)."""
    corrections = _checked_corrections(corrections)
    sizes = np.exp(np.clip(corrections[:, 2:4], *LOG_SIZE_RANGE))
    return np.column_stack([corrections[:, :2], correction_turns(corrections), sizes])


def _checked_corrections(corrections: np.ndarray, count: int | None = None) -> np.ndarray:
    """`corrections` as float64 (N, 6), or a ValueError naming the shape it has."""
    corrections = np.asarray(corrections, dtype=np.float64)
    rows = "N" if count is None else count
    if (
        corrections.ndim != 2
        or corrections.shape[1] != len(TARGET_COLUMNS)
        or (count is not None and len(corrections) != count)
    ):
        raise ValueError(
            f"corrections must have shape ({rows}, {len(TARGET_COLUMNS)}) "
            f"({', '.join(TARGET_COLUMNS)}), got {corrections.shape}"
        )
    return corrections


WINDOW_VIEWS = ("as cut", "mirrored", "flipped end to end", "half-turned")
"""The four ways `window_views` shows a window: as cut, columns reversed (mirrored across
the proposal's axis), rows reversed, and both (half a turn)."""


_VIEW_SIGNS = np.array([[1, 1, 1], [-1, 1, -1], [1, -1, -1], [-1, -1, 1]], dtype=np.float64)
"""For each of `WINDOW_VIEWS`, the sign a correction's du, dv and sin 2·turn take in it:
reversing the columns negates u, reversing the rows negates v, and either reflection
negates the turn; sizes and cos 2·turn do not change."""


def window_views(windows: np.ndarray) -> np.ndarray:
    """Windows (N, S, S, C) -> (4·N, S, S, C): all windows in each of `WINDOW_VIEWS` in
    turn. The ship's outline is symmetric across its axis, and the half-turned window is the
    window of the same box with the nose the other way (`FLIP_SHARE` of the training
    proposals), so each view is a window the refiner knows how to correct."""
    windows = np.asarray(windows)
    if windows.ndim != 4 or windows.shape[1] != windows.shape[2]:
        raise ValueError(f"windows must have shape (N, S, S, C), got {windows.shape}")
    views = (windows, windows[:, :, ::-1], windows[:, ::-1, :], windows[:, ::-1, ::-1])
    return np.concatenate(views, axis=0)


def average_view_corrections(corrections: np.ndarray) -> np.ndarray:
    """The refiner's outputs (4·N, 6) on `window_views` -> (N, 6): each view's correction
    turned back into the window as cut, then the mean of the four (the turn as the mean of
    its (cos 2·turn, sin 2·turn) points)."""
    corrections = _checked_corrections(corrections)
    views = len(WINDOW_VIEWS)
    if len(corrections) % views:
        raise ValueError(
            f"expected {views} views of each window, got {len(corrections)} rows "
            f"(not a multiple of {views})"
        )
    by_view = corrections.reshape(views, -1, len(TARGET_COLUMNS)).copy()
    by_view[:, :, [0, 1, 5]] *= _VIEW_SIGNS[:, None, :]
    return by_view.mean(axis=0)


def apply_refinement(proposals: np.ndarray, corrections: np.ndarray) -> np.ndarray:
    """Proposals (N, 5) corrected by the refiner's outputs (N, 6): the refined boxes (N, 5).

    The inverse of `refinement_targets`; the yaw turns by the predicted amount, so the
    nose stays on the proposal's side.
    """
    proposals = check_boxes(proposals, "proposals")
    corrections = _checked_corrections(corrections, len(proposals))
    side = window_sides(proposals)
    cos, sin = np.cos(proposals[:, 2]), np.sin(proposals[:, 2])
    across, along = corrections[:, 0] * side, corrections[:, 1] * side
    return np.column_stack(
        [
            proposals[:, 0] + across * cos + along * sin,
            proposals[:, 1] - across * sin + along * cos,
            wrap_angle(proposals[:, 2] + correction_turns(corrections)),
            side * np.exp(corrections[:, 2]),
            side * np.exp(corrections[:, 3]),
        ]
    )


def unchanged_corrections(proposals: np.ndarray) -> np.ndarray:
    """The corrections (N, 6) that leave proposals (N, 5) as they are: no offset, no turn,
    and their own sizes as fractions of their windows."""
    proposals = check_boxes(proposals, "proposals")
    side = window_sides(proposals)
    zeros, ones = np.zeros(len(proposals)), np.ones(len(proposals))
    return np.column_stack(
        [zeros, zeros, np.log(proposals[:, 3] / side), np.log(proposals[:, 4] / side), ones, zeros]
    )


def perturbed_proposals(
    labels: np.ndarray,
    rng: np.random.Generator,
    noise: tuple[float, float, float] = PROPOSAL_NOISE,
    wild_share: float = WILD_SHARE,
    flip_share: float = FLIP_SHARE,
) -> np.ndarray:
    """Training proposals: true boxes (N, 5) of ships with random errors of the size
    `noise` gives (centre px, axis rad, log size); a `wild_share` of them instead with the
    axis anywhere and twice the centre and size errors; a `flip_share` of them with the nose
    the wrong way. The centre stays inside the image."""
    labels = check_boxes(labels, "labels")
    if not has_box(labels).all():
        raise ValueError("proposals are made for ships only: drop the NaN rows first")
    for name, share in (("wild_share", wild_share), ("flip_share", flip_share)):
        if not 0 <= share <= 1:
            raise ValueError(f"{name} must be a share in [0, 1], got {share}")
    centre, axis, size = noise
    count = len(labels)
    wild = rng.uniform(size=count) < wild_share
    scale = np.where(wild, 2.0, 1.0)
    turns = np.where(wild, rng.uniform(-np.pi / 2, np.pi / 2, count), rng.normal(0, axis, count))
    turns = turns + np.pi * (rng.uniform(size=count) < flip_share)  # the nose the wrong way
    return np.column_stack(
        [
            np.clip(
                labels[:, :2] + rng.normal(0, centre, (count, 2)) * scale[:, None],
                0,
                IMAGE_SIZE - 1,
            ),
            wrap_angle(labels[:, 2] + turns),
            labels[:, 3:] * np.exp(rng.normal(0, size, (count, 2)) * scale[:, None]),
        ]
    )
