"""The generator's pixel model: the density of a background pixel's value (uniform noise)
and of an outline pixel's (the larger of a uniform value and the noise), their ratio and
their means below a cutoff."""

from __future__ import annotations

import numpy as np

from spaceship_utils.core.validation import (
    check_fraction,
)
from spaceship_utils.data.generator import NOISE_LEVEL


def check_cutoff(cutoff: float) -> float:
    cutoff = check_fraction(cutoff, "cutoff")
    if cutoff == 0:
        raise ValueError("cutoff must be > 0: no pixel value lies below 0")
    return cutoff


def noise_pixel_density(values: np.ndarray, noise_level: float = NOISE_LEVEL) -> np.ndarray:
    """Density of a background pixel's value, uniform on [0, noise_level): same shape as values."""
    noise_level = check_noise_level(noise_level)
    values = np.asarray(values, dtype=np.float64)
    return np.where((values >= 0) & (values < noise_level), 1 / noise_level, 0.0)


def ship_pixel_density(values: np.ndarray, noise_level: float = NOISE_LEVEL) -> np.ndarray:
    """Density of an outline pixel's value v = max(U(0, 1), noise_level * U(0, 1)).

    P(v <= x) = x * min(x / noise_level, 1), so the density is 2x / noise_level below the
    noise level and 1 from there up to 1. Same shape as `values`.
    """
    noise_level = check_noise_level(noise_level)
    values = np.asarray(values, dtype=np.float64)
    below = 2 * values / noise_level
    return np.where(
        (values >= 0) & (values < noise_level),
        below,
        np.where((values >= noise_level) & (values <= 1), 1.0, 0.0),
    )


def likelihood_ratio(values: np.ndarray, noise_level: float = NOISE_LEVEL) -> np.ndarray:
    """How much likelier a value is for an outline pixel than for noise: density ratio.

    Equals 2 v / noise_level below the noise level and +inf above it (noise never gets there).
    """
    ship = ship_pixel_density(values, noise_level)
    noise = noise_pixel_density(values, noise_level)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(noise > 0, ship / np.where(noise > 0, noise, 1.0), np.inf)


def ship_pixel_mean(cutoff: float = 1.0, noise_level: float = NOISE_LEVEL) -> float:
    """Mean value of an outline pixel among those below `cutoff` (derived, not sampled)."""
    cutoff = check_cutoff(cutoff)
    noise_level = check_noise_level(noise_level)
    if cutoff <= noise_level:
        return 2 * cutoff / 3
    # Integrate v * density over [0, noise_level) and [noise_level, cutoff); P(v < cutoff) = cutoff.
    first_moment = 2 * noise_level**2 / 3 + (cutoff**2 - noise_level**2) / 2
    return first_moment / cutoff


def noise_pixel_mean(cutoff: float = 1.0, noise_level: float = NOISE_LEVEL) -> float:
    """Mean value of a background pixel among those below `cutoff` (derived, not sampled)."""
    cutoff = check_cutoff(cutoff)
    noise_level = check_noise_level(noise_level)
    return min(cutoff, noise_level) / 2


def check_noise_level(noise_level: float) -> float:
    noise_level = check_fraction(noise_level, "noise_level")
    if noise_level == 0:
        raise ValueError("noise_level must be > 0 for a noise density to exist")
    return noise_level
