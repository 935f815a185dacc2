"""Rotated boxes: corners, the ship outline, heading, and vectorised IoU with shapely 2.

A box is (x, y, yaw, width, height) in pixels and radians. `width` runs across the
ship and `height` along it; the nose points along (sin yaw, cos yaw) in image (x, y)
coordinates, where x is the column and y the row.
"""

from __future__ import annotations

import numpy as np
import shapely

from spaceship_utils.core.validation import check_boxes, check_same_length, has_box


def wrapped_angle_error(
    yaw_a: np.ndarray, yaw_b: np.ndarray, period: float = 2 * np.pi
) -> np.ndarray:
    """Smallest absolute difference between angles, in [0, period / 2] (radians)."""
    diff = np.mod(np.asarray(yaw_a) - np.asarray(yaw_b), period)
    return np.minimum(diff, period - diff)


def rotation_matrices(yaw_rad: np.ndarray | float) -> np.ndarray:
    """Matrices R of shape (..., 2, 2) such that `points @ R` turns row-vector points by yaw."""
    cos, sin = np.cos(yaw_rad), np.sin(yaw_rad)
    return np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """Corners of rotated boxes: (N, 5) boxes -> (N, 4, 2) points (x, y), in drawing order."""
    boxes = np.asarray(boxes, dtype=np.float64)
    half_w, half_h = boxes[:, 3] / 2, boxes[:, 4] / 2
    local = np.stack(
        [
            np.stack([-half_w, -half_h], -1),
            np.stack([-half_w, half_h], -1),
            np.stack([half_w, half_h], -1),
            np.stack([half_w, -half_h], -1),
        ],
        axis=1,
    )
    return local @ rotation_matrices(boxes[:, 2]) + boxes[:, None, :2]


def ship_outline_local(width: np.ndarray, height: np.ndarray, tail_ratio: np.ndarray) -> np.ndarray:
    """The arrow-shaped outline before rotation: (...,) params -> (..., 4, 2) points.

    Points are nose, left wing tip, tail notch and right wing tip, centred on the box
    centre. `tail_ratio` places the notch as a fraction of the height from the wing line.
    """
    width = np.asarray(width, dtype=np.float64)
    height = np.asarray(height, dtype=np.float64)
    zero = np.zeros_like(width * height)
    half_h = height / 2
    xs = np.stack([zero, -width / 2 + zero, zero, width / 2 + zero], -1)
    ys = np.stack([height - half_h, zero - half_h, height * tail_ratio - half_h, zero - half_h], -1)
    return np.stack([xs, ys], -1)


def heading_vectors(yaw_rad: np.ndarray) -> np.ndarray:
    """Unit vectors (N, 2) in image (x, y) pointing from the box centre to the ship's nose."""
    yaw_rad = np.asarray(yaw_rad, dtype=np.float64)
    return np.stack([np.sin(yaw_rad), np.cos(yaw_rad)], -1)


def box_polygons(boxes: np.ndarray) -> np.ndarray:
    """Shapely polygons, one per (x, y, yaw, width, height) row: (N, 5) -> (N,) object array."""
    return shapely.polygons(box_corners(boxes))


def rotated_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of paired rotated boxes: two (N, 5) arrays -> (N,) in [0, 1].

    Rows with NaN in either array give NaN. No Python loop over samples.
    """
    boxes_a = check_boxes(boxes_a, "boxes_a")
    boxes_b = check_boxes(boxes_b, "boxes_b")
    check_same_length(boxes_a=boxes_a, boxes_b=boxes_b)
    iou = np.full(len(boxes_a), np.nan)
    both = has_box(boxes_a) & has_box(boxes_b)
    if np.any(both):
        poly_a = box_polygons(boxes_a[both])
        poly_b = box_polygons(boxes_b[both])
        inter = shapely.area(shapely.intersection(poly_a, poly_b))
        # |A u B| = |A| + |B| - |A n B|: the same as the official union's area to ~1e-15
        # relative, at half the cost of building the union polygons.
        union = shapely.area(poly_a) + shapely.area(poly_b) - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            # Rounding can put two identical huge boxes a hair above 1: clip to [0, 1].
            iou[both] = np.clip(np.where(union > 0, inter / union, 0.0), 0.0, 1.0)
    return iou


def wrap_angle(angle_rad: np.ndarray, period: float = 2 * np.pi) -> np.ndarray:
    """Angles mapped into [0, period): np.mod, except that a tiny negative angle gives 0."""
    wrapped = np.mod(angle_rad, period)
    return np.where(wrapped >= period, 0.0, wrapped)
