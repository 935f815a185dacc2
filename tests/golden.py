"""The cases and the digests used by the golden-fixture tests of `make_data`."""

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
"""One `np.random.seed(seed)`, then one `make_data(**kwargs)` call: the first draw after a seed."""

SEQUENCE_SEED = 7
SEQUENCE_CALLS: list[dict] = [
    {},
    {"has_spaceship": True},
    {},
    {"has_spaceship": False},
    {},
    {},
]
"""One `np.random.seed(SEQUENCE_SEED)`, then these `make_data` calls in a row. With seed 7
the four calls that draw ship-or-not get ship, no ship, ship, ship, so the sequence holds
both outcomes of that draw as well as forced ships and a forced empty image."""

NEXT_DRAWS = 8
"""After the sequence, this many `np.random.random` values show where the stream was left."""


def digest_sample(image: np.ndarray, label: np.ndarray) -> dict:
    """SHA-256 of the image and label bytes (C order), with their dtypes and shapes."""
    return {
        "image_sha256": hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest(),
        "label_sha256": hashlib.sha256(np.ascontiguousarray(label).tobytes()).hexdigest(),
        "image_dtype": str(image.dtype),
        "label_dtype": str(label.dtype),
        "image_shape": list(image.shape),
    }


def digest_sequence(make_data) -> dict:
    """Digests of `SEQUENCE_CALLS` to `make_data` after one seed, and of the draws after them.

    `make_data` is the official generator when the fixture is written and ours when it is
    checked; both must draw from NumPy's global legacy stream.
    """
    np.random.seed(SEQUENCE_SEED)
    calls = [{"kwargs": kwargs, **digest_sample(*make_data(**kwargs))} for kwargs in SEQUENCE_CALLS]
    next_draws = hashlib.sha256(np.random.random(NEXT_DRAWS).tobytes()).hexdigest()
    return {"seed": SEQUENCE_SEED, "calls": calls, "next_draws_sha256": next_draws}
