"""The IoU of two rotated boxes as a differentiable tensor function, for a loss.

The scorer's IoU (`geometry.rotated_iou`) asks shapely for the overlap polygon, which no
gradient can pass through. Here the overlap of two rectangles is built from tensor
operations alone, the approach of Zhou et al. (2019, arXiv:1908.03851):

1. collect every point that can be a corner of the overlap: the 4 corners of each box that
   lie inside the other box, and the 16 crossings of an edge of one box with an edge of the
   other (24 candidates, each with a flag saying whether it is real);
2. sort the real ones by their angle around their mean, so they go round the polygon;
3. take the polygon's area with the shoelace formula.

The area is a smooth function of the real corners' coordinates, so the IoU has a gradient
wherever the boxes overlap (it is flat, zero, where they do not). Only `keras.ops` is used,
so any backend trains with it. Boxes are (N, 5) tensors (x, y, yaw, width, height) in
pixels and radians, as in `geometry`.
"""

from __future__ import annotations

from spaceship_utils.core.runtime import import_keras

keras = import_keras()


ops = keras.ops


INSIDE_TOLERANCE = 1e-3
"""Pixels by which a corner may lie outside the other box and still count as inside (so a
corner on the other box's edge is not lost to rounding)."""


PARALLEL_TOLERANCE = 1e-6
"""|cross product| (px²) below which two edges count as parallel: they contribute no crossing."""


def box_corners_tensor(boxes):
    """(..., 5) boxes -> corner x and y, each (..., 4), in `geometry.box_corners`' order."""
    cos, sin = ops.cos(boxes[..., 2]), ops.sin(boxes[..., 2])
    half_w, half_h = boxes[..., 3:4] / 2, boxes[..., 4:5] / 2
    sign_w = ops.convert_to_tensor([-1.0, -1.0, 1.0, 1.0])
    sign_h = ops.convert_to_tensor([-1.0, 1.0, 1.0, -1.0])
    local_x, local_y = sign_w * half_w, sign_h * half_h
    # Row vector (u, v) @ [[cos, -sin], [sin, cos]] = (u cos + v sin, -u sin + v cos).
    xs = local_x * cos[..., None] + local_y * sin[..., None] + boxes[..., 0:1]
    ys = -local_x * sin[..., None] + local_y * cos[..., None] + boxes[..., 1:2]
    return xs, ys


def _inside(xs, ys, boxes):
    """Whether points (..., K) lie in the boxes (..., 5), edges included (with tolerance)."""
    cos, sin = ops.cos(boxes[..., 2:3]), ops.sin(boxes[..., 2:3])
    dx, dy = xs - boxes[..., 0:1], ys - boxes[..., 1:2]
    # Undo the turn: the point in the box's own axes.
    along_w = dx * cos - dy * sin
    along_h = dx * sin + dy * cos
    return ops.logical_and(
        ops.abs(along_w) <= boxes[..., 3:4] / 2 + INSIDE_TOLERANCE,
        ops.abs(along_h) <= boxes[..., 4:5] / 2 + INSIDE_TOLERANCE,
    )


def _edge_crossings(xs_a, ys_a, xs_b, ys_b):
    """Crossings of each edge of A with each edge of B: corners (N, 4) -> x, y, flags (N, 16)."""
    start_ax, start_ay = xs_a[..., :, None], ys_a[..., :, None]  # edge i of A, (..., 4, 1)
    run_ax = ops.roll(xs_a, -1, axis=-1)[..., :, None] - start_ax
    run_ay = ops.roll(ys_a, -1, axis=-1)[..., :, None] - start_ay
    start_bx, start_by = xs_b[..., None, :], ys_b[..., None, :]  # edge j of B, (..., 1, 4)
    run_bx = ops.roll(xs_b, -1, axis=-1)[..., None, :] - start_bx
    run_by = ops.roll(ys_b, -1, axis=-1)[..., None, :] - start_by
    # A_i + t·runA = B_j + u·runB, solved with 2-D cross products.
    denominator = run_ax * run_by - run_ay * run_bx
    parallel = ops.abs(denominator) < PARALLEL_TOLERANCE
    safe = ops.where(parallel, ops.ones_like(denominator), denominator)
    gap_x, gap_y = start_bx - start_ax, start_by - start_ay
    t = (gap_x * run_by - gap_y * run_bx) / safe
    u = (gap_x * run_ay - gap_y * run_ax) / safe
    real = ops.logical_and(
        ops.logical_not(parallel),
        ops.logical_and(ops.logical_and(t >= 0.0, t <= 1.0), ops.logical_and(u >= 0.0, u <= 1.0)),
    )
    cross_x, cross_y = start_ax + t * run_ax, start_ay + t * run_ay
    return (
        ops.reshape(cross_x, (-1, 16)),
        ops.reshape(cross_y, (-1, 16)),
        ops.reshape(real, (-1, 16)),
    )


def polygon_area_of_points(xs, ys, real):
    """Area (...,) of the convex polygon whose corners are the `real` points of (..., K).

    Points are ordered by angle around the mean of the real ones; the points that are not
    real are replaced by the first corner, so they add edges of length zero and no area.
    """
    weight = ops.cast(real, xs.dtype)
    count = ops.maximum(ops.sum(weight, axis=-1, keepdims=True), 1.0)
    mean_x = ops.sum(xs * weight, axis=-1, keepdims=True) / count
    mean_y = ops.sum(ys * weight, axis=-1, keepdims=True) / count
    angle = ops.arctan2(ops.stop_gradient(ys - mean_y), ops.stop_gradient(xs - mean_x))
    angle = ops.where(real, angle, 10.0 * ops.ones_like(angle))  # not real: sorted last
    order = ops.argsort(angle, axis=-1)
    xs = ops.take_along_axis(xs, order, axis=-1)
    ys = ops.take_along_axis(ys, order, axis=-1)
    real = ops.take_along_axis(weight, order, axis=-1) > 0
    xs = ops.where(real, xs, xs[..., :1])
    ys = ops.where(real, ys, ys[..., :1])
    twice_area = ops.sum(xs * ops.roll(ys, -1, axis=-1) - ops.roll(xs, -1, axis=-1) * ys, axis=-1)
    return ops.abs(twice_area) / 2


def overlap_corner_candidates(boxes_a, boxes_b):
    """The 24 points that can be corners of the overlap of two (N, 5) boxes: x, y (N, 24)
    and whether each is a real corner (N, 24). In order: A's 4 corners (real if inside B),
    B's 4 corners (real if inside A), then the 16 edge crossings (real if both edges meet)."""
    boxes_a = ops.cast(boxes_a, "float32")
    boxes_b = ops.cast(boxes_b, "float32")
    xs_a, ys_a = box_corners_tensor(boxes_a)
    xs_b, ys_b = box_corners_tensor(boxes_b)
    cross_x, cross_y, crossing = _edge_crossings(xs_a, ys_a, xs_b, ys_b)
    xs = ops.concatenate([xs_a, xs_b, cross_x], axis=-1)
    ys = ops.concatenate([ys_a, ys_b, cross_y], axis=-1)
    real = ops.concatenate(
        [_inside(xs_a, ys_a, boxes_b), _inside(xs_b, ys_b, boxes_a), crossing], axis=-1
    )
    return xs, ys, real


def rotated_iou_tensor(boxes_a, boxes_b):
    """IoU of paired rotated boxes: two (N, 5) float tensors -> (N,) in [0, 1].

    Agrees with the scorer's shapely IoU (`geometry.rotated_iou`) to float precision and
    is differentiable with respect to both boxes where they overlap. Widths and heights
    must be positive.
    """
    boxes_a = ops.cast(boxes_a, "float32")
    boxes_b = ops.cast(boxes_b, "float32")
    # Measure both from A's centre: small coordinates keep float32 rounding small.
    origin = ops.concatenate([boxes_a[:, :2], ops.zeros_like(boxes_a[:, 2:])], axis=-1)
    boxes_a, boxes_b = boxes_a - origin, boxes_b - origin
    overlap = polygon_area_of_points(*overlap_corner_candidates(boxes_a, boxes_b))
    area_a = boxes_a[..., 3] * boxes_a[..., 4]
    area_b = boxes_b[..., 3] * boxes_b[..., 4]
    union = ops.maximum(area_a + area_b - overlap, 1e-6)
    return ops.clip(overlap / union, 0.0, 1.0)
