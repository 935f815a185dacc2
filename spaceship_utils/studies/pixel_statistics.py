"""Pixel statistics of the generator's images: what a brightness threshold keeps and loses.

The value densities of outline and background pixels (derived in closed form), their
likelihood ratio and means below a cutoff, each pixel's class (outline, noise line or
background noise) from the generator's layers, and `threshold_sweep`: per class, what
every threshold in a list keeps of a set of images. Plain NumPy; chapter 2 prints these.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from spaceship_utils.core.tables import format_table
from spaceship_utils.core.validation import (
    check_count,
    check_fraction,
    check_images,
    check_same_length,
)
from spaceship_utils.data.generator import NOISE_LEVEL, Layers
from spaceship_utils.data.pixel_model import check_noise_level

PIXEL_CLASSES = ("outline", "line", "noise")
"""Pixel classes of `classify_pixels`, in the order of their codes 0, 1, 2."""


def outline_share_between(low: float, high: float, noise_level: float = NOISE_LEVEL) -> float:
    """Share of outline pixels whose value lies in [low, high): the integral of
    `ship_pixel_density`, in closed form (high² - low²) / noise_level below the noise level."""
    low, high = check_fraction(low, "low"), check_fraction(high, "high")
    noise_level = check_noise_level(noise_level)
    if low > high:
        raise ValueError(f"low must not exceed high, got low={low}, high={high}")

    def below(value: float) -> float:  # P(S < value) = value · min(value / noise_level, 1)
        return value * min(value / noise_level, 1.0)

    return below(high) - below(low)


def outline_pixels_kept(layers: Layers, threshold: float) -> tuple[int, int]:
    """(outline pixels at or above `threshold` in the image, outline pixels in all) of one
    sample's `Layers`."""
    threshold = check_fraction(threshold, "threshold")
    outline = layers.ship > 0
    return int(np.count_nonzero(outline & (layers.image >= threshold))), int(outline.sum())


def classify_pixels(ship_layer: np.ndarray, line_layer: np.ndarray) -> np.ndarray:
    """Pixel class codes (N, 200, 200) int8 from the layers: 0 outline, 1 line, 2 noise.

    A pixel is `outline` if the ship's outline was drawn there, else `line` if a noise line was,
    else `noise`. Layers are (N, 200, 200) or (200, 200), zero where nothing was drawn.
    """
    ship = check_images(ship_layer, "ship_layer")
    lines = check_images(line_layer, "line_layer")
    check_same_length(ship_layer=ship, line_layer=lines)
    classes = np.full(ship.shape, 2, dtype=np.int8)
    classes[lines > 0] = 1
    classes[ship > 0] = 0
    return classes


@dataclass(frozen=True)
class ThresholdSweep:
    """What each threshold keeps of N images, per pixel class (`PIXEL_CLASSES` order).

    thresholds (T,); pixel_counts (N, 3): pixels per class per image; kept_counts (N, T, 3):
    pixels at or above each threshold; below_sums (T, 3): summed values of the pixels below
    each threshold, all images pooled; outline_snr (N, T): see `threshold_sweep`;
    bin_edges (B + 1,) and value_counts (3, B): a histogram of raw pixel values per class.
    """

    thresholds: np.ndarray
    pixel_counts: np.ndarray
    kept_counts: np.ndarray
    below_sums: np.ndarray
    outline_snr: np.ndarray
    bin_edges: np.ndarray
    value_counts: np.ndarray

    def kept_share(self) -> np.ndarray:
        """(T, 3): share of all pixels of each class, pooled over images, kept by each threshold."""
        return self.kept_counts.sum(axis=0) / self.pixel_counts.sum(axis=0)

    def ship_share_of_kept(self) -> np.ndarray:
        """(T,): of all the pixels a threshold keeps (pooled), the share on a ship's outline."""
        kept = self.kept_counts.sum(axis=0)
        return kept[:, 0] / kept.sum(axis=1)

    def mean_below(self) -> np.ndarray:
        """(T, 3): mean raw value of each class's pixels below each threshold (NaN if none)."""
        below = self.pixel_counts.sum(axis=0) - self.kept_counts.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(below > 0, self.below_sums / np.maximum(below, 1), np.nan)

    def median_outline_kept(self) -> np.ndarray:
        """(T,): outline pixels each threshold keeps, median over the images with a ship."""
        with_ship = self.pixel_counts[:, 0] > 0
        if not with_ship.any():
            return np.full(len(self.thresholds), np.nan)
        return np.median(self.kept_counts[with_ship, :, 0], axis=0)

    def median_outline_snr(self) -> np.ndarray:
        """(T,): the outline SNR at each threshold, median over images (NaN ignored)."""
        return np.nanmedian(self.outline_snr, axis=0)

    def summary_table(self, *, thresholds: tuple[float, ...] | None = None) -> str:
        """One row per threshold: the share of each class kept (all images pooled), the
        ship's share of what is kept, and per image the median outline pixels kept and
        the median outline SNR ("SNR").

        `thresholds` picks the rows, in the order given (each must have been swept, else
        ValueError); None gives a row for every swept threshold.
        """
        shares, ship_share = self.kept_share(), self.ship_share_of_kept()
        kept, snr = self.median_outline_kept(), self.median_outline_snr()
        if thresholds is None:
            indices = range(len(self.thresholds))
        else:
            indices = [self.index_of(threshold) for threshold in thresholds]
        rows = [
            [
                f"{self.thresholds[index]:.2f}",
                *(f"{share:.1%}" for share in shares[index]),
                f"{ship_share[index]:.2%}",
                f"{kept[index]:.0f}",
                f"{snr[index]:.1f}",
            ]
            for index in indices
        ]
        header = [
            "threshold",
            *(f"{name} kept" for name in PIXEL_CLASSES),
            "outline share",
            "outline px (median)",
            "SNR (median)",
        ]
        return format_table(header, rows)

    def index_of(self, threshold: float) -> int:
        """Position of `threshold` in `thresholds`, or ValueError if it was not swept."""
        matches = np.flatnonzero(np.isclose(self.thresholds, threshold, rtol=0, atol=1e-12))
        if not matches.size:
            raise ValueError(f"threshold {threshold} was not swept; swept {self.thresholds}")
        return int(matches[0])


def threshold_sweep(
    images: np.ndarray,
    pixel_classes: np.ndarray,
    thresholds: Sequence[float],
    bins: int = 50,
) -> ThresholdSweep:
    """Apply each threshold to every image and count what survives, per pixel class.

    images (N, 200, 200) in [0, 1] (or one (200, 200)); pixel_classes the same shape, from
    `classify_pixels`.
    The outline SNR of an image at threshold t compares the thresholded image (pixels below
    t set to 0) on the outline with the rest: sqrt(n_ship) * (mean ship - mean background)
    / std background, i.e. how many background standard deviations the summed outline stands
    out if one knew where it lay. NaN where an image has no ship pixel or a flat background.
    """
    images = check_images(images)
    classes = np.asarray(pixel_classes)
    if classes.ndim == 2:
        classes = classes[None]
    if classes.shape != images.shape:
        raise ValueError(
            f"pixel_classes must have the images' shape {images.shape}, got {classes.shape}"
        )
    if not np.isin(classes, (0, 1, 2)).all():
        raise ValueError("pixel_classes must hold only the codes 0 (outline), 1 (line), 2 (noise)")
    levels = np.array([check_fraction(float(t), "thresholds") for t in thresholds])
    if not levels.size:
        raise ValueError("thresholds must hold at least one value")
    bins = check_count(bins, "bins", minimum=1)

    flat = images.reshape(len(images), -1).astype(np.float64)
    codes = classes.reshape(len(images), -1).astype(np.int64)
    # One pass over the pixels: for each image and class, the count, sum and sum of squares
    # of the values between consecutive thresholds. Every quantity below is a running sum
    # of these over the thresholds, which is much faster than thresholding T times.
    order = np.argsort(levels)
    passed = np.searchsorted(levels[order], flat, side="right")  # thresholds at or below
    slots = levels.size + 1
    keys = ((np.arange(len(images))[:, None] * 3 + codes) * slots + passed).ravel()

    def binned(weights: np.ndarray | None) -> np.ndarray:
        """(N, 3, T + 1): the total of `weights` per image, class and value band."""
        totals = np.bincount(keys, weights=weights, minlength=len(images) * 3 * slots)
        return totals.reshape(len(images), 3, slots)

    def above(totals: np.ndarray) -> np.ndarray:
        """(N, 3, T): the totals of the bands above each threshold, the lowest first."""
        return np.cumsum(totals[..., ::-1], axis=-1)[..., ::-1][..., 1:]

    counts, sums, squares = binned(None), binned(flat.ravel()), binned(flat.ravel() ** 2)
    # Kept at the j-th lowest threshold: the bands above it; below it: the bands up to it.
    kept, kept_sums, kept_squares = above(counts), above(sums), above(squares)
    below = np.cumsum(sums, axis=-1)[..., :-1].sum(axis=0)  # (3, T)

    pixel_counts = counts.sum(axis=-1)  # (N, 3)
    n_ship = pixel_counts[:, :1]
    n_background = pixel_counts[:, 1:].sum(axis=1, keepdims=True)
    ship_mean = kept_sums[:, 0] / np.maximum(n_ship, 1)
    background_sum = kept_sums[:, 1:].sum(axis=1)  # pixels below a threshold count as 0
    background_mean = background_sum / np.maximum(n_background, 1)
    spread = (
        kept_squares[:, 1:].sum(axis=1)
        - 2 * background_mean * background_sum
        + n_background * background_mean**2
    )
    background_std = np.sqrt(np.maximum(spread, 0.0) / np.maximum(n_background, 1))
    valid = (n_ship > 0) & (background_std > 1e-12)
    snr = np.sqrt(n_ship) * (ship_mean - background_mean) / np.where(valid, background_std, 1.0)
    unsorted = np.argsort(order)  # back to the order the thresholds were given in
    kept_counts = kept.transpose(0, 2, 1)[:, unsorted].astype(np.int64)
    below_sums = below.T[unsorted]
    outline_snr = np.where(valid, snr, np.nan)[:, unsorted]
    masks = [(codes == code) for code in range(3)]
    bin_edges = np.linspace(0.0, 1.0, bins + 1)
    value_counts = np.stack([np.histogram(flat[mask], bins=bin_edges)[0] for mask in masks])
    return ThresholdSweep(
        levels, pixel_counts, kept_counts, below_sums, outline_snr, bin_edges, value_counts
    )


def sweep_layers(
    layers: Iterable[Layers],
    thresholds: Sequence[float],
    chunk_size: int = 200,
    bins: int = 50,
) -> ThresholdSweep:
    """`threshold_sweep` over a stream of `Layers` (from `make_layers`), a chunk at a time.

    Memory stays at one chunk of images however many layers the iterable yields.
    """
    chunk_size = check_count(chunk_size, "chunk_size", minimum=1)
    parts: list[ThresholdSweep] = []
    chunk: list[Layers] = []
    for sample in layers:
        chunk.append(sample)
        if len(chunk) == chunk_size:
            parts.append(_sweep_chunk(chunk, thresholds, bins))
            chunk = []
    if chunk:
        parts.append(_sweep_chunk(chunk, thresholds, bins))
    if not parts:
        raise ValueError("layers must yield at least one sample")
    return ThresholdSweep(
        thresholds=parts[0].thresholds,
        pixel_counts=np.concatenate([part.pixel_counts for part in parts]),
        kept_counts=np.concatenate([part.kept_counts for part in parts]),
        below_sums=np.sum([part.below_sums for part in parts], axis=0),
        outline_snr=np.concatenate([part.outline_snr for part in parts]),
        bin_edges=parts[0].bin_edges,
        value_counts=np.sum([part.value_counts for part in parts], axis=0),
    )


def _sweep_chunk(chunk: list[Layers], thresholds: Sequence[float], bins: int) -> ThresholdSweep:
    images = np.stack([sample.image for sample in chunk])
    classes = classify_pixels(np.stack([s.ship for s in chunk]), np.stack([s.lines for s in chunk]))
    return threshold_sweep(images, classes, thresholds, bins)
