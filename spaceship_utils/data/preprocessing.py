"""Inputs and targets for the networks: threshold preprocessing, label scaling, yaw codes."""

from __future__ import annotations

import numpy as np

from spaceship_utils.core.geometry import wrap_angle
from spaceship_utils.core.validation import (
    check_boxes,
    check_finite_values,
    check_fraction,
    check_images,
)

THRESHOLD = 0.8
"""The seed's threshold: pixels below it are set to 0 (the noise never reaches 0.8)."""


LABEL_SCALE = np.array([200.0, 200.0, 2 * np.pi, 37.0, 74.0])
"""The seed's scale vector: x, y, yaw, width and height divided by these lie in [0, 1]
(height is unbounded in principle: about 2 ships in 10^4 are taller than 74 px, so a
few scaled heights land a little above 1)."""


YAW_ENCODINGS = ("raw", "sincos", "sincos2")
"""`raw`: yaw / 2pi; `sincos`: (sin yaw, cos yaw); `sincos2`: (sin 2yaw, cos 2yaw), the
box alone, which cannot tell nose from tail."""


def threshold_images(images: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Zero every pixel below `threshold`: (N, 200, 200) or (200, 200) -> float32, same shape."""
    array = np.asarray(images)
    check_images(array)
    threshold = check_fraction(threshold, "threshold")
    return np.where(array >= threshold, array, 0).astype(np.float32)


def normalise_labels(labels: np.ndarray) -> np.ndarray:
    """Divide (N, 5) boxes by the seed's scale vector; NaN rows stay NaN."""
    return check_boxes(labels, "labels") / LABEL_SCALE


def denormalise_labels(scaled: np.ndarray) -> np.ndarray:
    """Exact inverse of `normalise_labels`: (N, 5) scaled values -> boxes in px and rad."""
    return check_boxes(scaled, "scaled") * LABEL_SCALE


def encode_yaw(yaw_rad: np.ndarray, encoding: str = "sincos") -> np.ndarray:
    """Yaw (N,) in radians -> (N, 1) for 'raw' (yaw / 2pi, wrapped) or (N, 2) (sin, cos)."""
    yaw_rad = check_finite_values(yaw_rad, "yaw_rad").reshape(-1)
    if encoding == "raw":
        return (wrap_angle(yaw_rad) / (2 * np.pi))[:, None]
    if encoding == "sincos":
        return np.stack([np.sin(yaw_rad), np.cos(yaw_rad)], axis=-1)
    if encoding == "sincos2":
        return np.stack([np.sin(2 * yaw_rad), np.cos(2 * yaw_rad)], axis=-1)
    raise ValueError(f"encoding must be one of {YAW_ENCODINGS}, got {encoding!r}")


def decode_yaw(codes: np.ndarray, encoding: str = "sincos") -> np.ndarray:
    """Inverse of `encode_yaw`: codes -> yaw (N,) in [0, 2pi) ('sincos2': in [0, pi))."""
    codes = check_finite_values(codes, "codes")
    if encoding == "raw":
        if codes.ndim > 2 or (codes.ndim == 2 and codes.shape[1] != 1):
            raise ValueError(f"codes must have shape (N,) or (N, 1) for 'raw', got {codes.shape}")
        return wrap_angle(codes.reshape(-1) * 2 * np.pi)
    if encoding not in YAW_ENCODINGS:
        raise ValueError(f"encoding must be one of {YAW_ENCODINGS}, got {encoding!r}")
    if codes.ndim != 2 or codes.shape[1] != 2:
        raise ValueError(f"codes must have shape (N, 2) for {encoding!r}, got {codes.shape}")
    angle = np.arctan2(codes[:, 0], codes[:, 1])
    if encoding == "sincos2":
        return wrap_angle(angle / 2, np.pi)
    return wrap_angle(angle)
