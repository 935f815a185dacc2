"""Checks at the public boundary: bad input raises a ValueError that names what was wrong."""

from __future__ import annotations

import numbers

import numpy as np

IMAGE_SIZE = 200


LABEL_SIZE = 5


def check_images(
    images: np.ndarray, name: str = "images", image_size: int = IMAGE_SIZE
) -> np.ndarray:
    """Return `images` as a float array of shape (N, size, size), or raise ValueError.

    A single (size, size) image is accepted and given a batch axis. Pixels must be finite
    floats in [0, 1], the range of `make_data`: the 0.8 threshold and every network assume it.
    """
    array = np.asarray(images)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1:] != (image_size, image_size):
        raise ValueError(
            f"{name} must have shape (N, {image_size}, {image_size}) or ({image_size}, "
            f"{image_size}), got {np.shape(images)}"
        )
    if np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{name} must be floats in [0, 1] like make_data's images, got dtype {array.dtype}; "
            "for 8-bit pixels (0-255) pass images / 255"
        )
    if not np.all(np.isfinite(array)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(f"{name} contain {bad} NaN or infinite pixel(s)")
    if array.size and (array.min() < 0 or array.max() > 1):
        raise ValueError(
            f"{name} must have pixel values in [0, 1] like make_data's images, got values "
            f"from {array.min():.4g} to {array.max():.4g}; rescale them (e.g. images / 255 "
            "for 8-bit pixels)"
        )
    return array


def check_boxes(boxes: np.ndarray, name: str = "boxes") -> np.ndarray:
    """Return `boxes` as a float64 array of shape (N, 5), or raise ValueError.

    A row is (x, y, yaw, width, height); a row of NaNs means "no ship". A single
    length-5 box is given a batch axis. Rows must be all-NaN or all-finite.
    """
    array = np.asarray(boxes, dtype=np.float64) if _is_numeric(boxes) else None
    if array is None:
        raise ValueError(f"{name} must be numeric, got {type(boxes).__name__}")
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] != LABEL_SIZE:
        raise ValueError(
            f"{name} must have shape (N, {LABEL_SIZE}) or ({LABEL_SIZE},): one "
            f"(x, y, yaw, width, height) per sample, got shape {np.shape(boxes)}"
        )
    nan_count = np.isnan(array).sum(axis=1)
    partial = (nan_count > 0) & (nan_count < LABEL_SIZE)
    if np.any(partial):
        row = int(np.flatnonzero(partial)[0])
        raise ValueError(
            f"{name}[{row}] mixes NaN and numbers; use a row of five NaNs for 'no ship'"
        )
    if np.any(np.isinf(array)):
        row = int(np.flatnonzero(np.isinf(array).any(axis=1))[0])
        raise ValueError(f"{name}[{row}] contains an infinite value")
    negative = np.nan_to_num(array[:, 3:]) < 0
    if np.any(negative):
        row = int(np.flatnonzero(negative.any(axis=1))[0])
        raise ValueError(f"{name}[{row}] has a negative width or height: {array[row].tolist()}")
    return array


def check_finite_values(values: np.ndarray, name: str) -> np.ndarray:
    """Return `values` as a float64 array of finite numbers, or raise ValueError naming it."""
    if not _is_numeric(values):
        raise ValueError(f"{name} must be numeric, got {type(values).__name__}")
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {int(np.sum(~np.isfinite(array)))} NaN/inf")
    return array


def check_same_length(**arrays: np.ndarray) -> int:
    """Return the common first-axis length of the arrays, or raise ValueError naming them."""
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name}: {length}" for name, length in lengths.items())
        raise ValueError(f"arrays must have the same number of samples, got {described}")
    return next(iter(lengths.values()))


def check_fraction(value: float, name: str) -> float:
    """Return `value` as a float in [0, 1], or raise ValueError."""
    if not isinstance(value, numbers.Real) or not np.isfinite(value) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def check_count(value: int, name: str, minimum: int = 0) -> int:
    """Return `value` as an int >= minimum, or raise ValueError (booleans are refused)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _is_numeric(value: object) -> bool:
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        return False
    return array.dtype != object and (
        np.issubdtype(array.dtype, np.floating)
        or np.issubdtype(array.dtype, np.integer)
        or np.issubdtype(array.dtype, np.bool_)
    )


def has_box(boxes: np.ndarray) -> np.ndarray:
    """(N,) True where a row of (N, 5) boxes or labels holds a box; a NaN anywhere means none."""
    return ~np.isnan(np.asarray(boxes, dtype=np.float64)).any(axis=1)
