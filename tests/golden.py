"""The cases and the digest used by the golden-fixture test of `make_data`."""

from __future__ import annotations

import hashlib

import numpy as np

CASES: list[tuple[int, dict]] = [(seed, {}) for seed in range(40)] + [
    (100, {"has_spaceship": True}),
    (101, {"has_spaceship": False}),
    (102, {"has_spaceship": True, "noise_level": 0.0, "no_lines": 0}),
    (103, {"has_spaceship": True, "noise_level": 0.3, "no_lines": 12}),
    (104, {"no_lines": 0}),
    (105, {"has_spaceship": True, "image_size": 256}),
    (106, {"noise_level": 1.0}),
    (107, {"has_spaceship": True, "no_lines": 1}),
]


def digest_sample(image: np.ndarray, label: np.ndarray) -> dict:
    """SHA-256 of the image and label bytes (C order), with their dtypes and shapes."""
    return {
        "image_sha256": hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest(),
        "label_sha256": hashlib.sha256(np.ascontiguousarray(label).tobytes()).hexdigest(),
        "image_dtype": str(image.dtype),
        "label_dtype": str(label.dtype),
        "image_shape": list(image.shape),
    }
