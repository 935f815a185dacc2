"""The numbers behind chapters 1-3: what the generator draws, what a threshold keeps, label scales.

Everything here is plain NumPy on arrays from `spaceship_utils.data`, so each statistic a
chapter prints is computed by one tested function. Boxes are (x, y, yaw, width, height) in
pixels and radians, one row per sample, a row of NaNs where there is no ship.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .data import (
    EDGE_MARGIN,
    LABEL_NAMES,
    LENGTH_TO_WIDTH,
    NOISE_LEVEL,
    SIZE_RANGE,
    Layers,
    generate_batch,
    make_data,
)
from .geometry import box_corners, rotated_iou, rotation_matrices, ship_outline_local
from .preprocessing import encode_yaw, wrapped_angle_error
from .validation import (
    IMAGE_SIZE,
    check_boxes,
    check_count,
    check_fraction,
    check_images,
    check_same_length,
    has_box,
)

LABEL_UNITS = ("px", "px", "rad", "px", "px")
"""Unit of each label column, in the order of `LABEL_NAMES`."""

PIXEL_CLASSES = ("ship", "line", "noise")
"""Pixel classes of `classify_pixels`, in the order of their codes 0, 1, 2."""


# --- Chapter 1: what make_data draws ----------------------------------------------------


@dataclass(frozen=True)
class LabelColumn:
    """Summary of one label column over the samples that hold a ship."""

    index: int
    name: str
    unit: str
    minimum: float
    maximum: float
    integer_valued: bool
    dtype: str


def ship_rows(labels: np.ndarray) -> np.ndarray:
    """The rows of (N, 5) labels that hold a ship (no NaN), as float64 (M, 5)."""
    boxes = check_boxes(labels, "labels")
    ships = boxes[has_box(boxes)]
    if not len(ships):
        raise ValueError("labels must hold at least one row with a ship (a row without NaN)")
    return ships


def draw_samples(count: int, has_spaceship: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`count` samples of the official `make_data` (global NumPy stream), stacked.

    Returns images (count, 200, 200) float64 and labels (count, 5) float64.
    """
    count = check_count(count, "count", minimum=1)
    samples = [make_data(has_spaceship) for _ in range(count)]
    return np.stack([image for image, _ in samples]), np.stack([label for _, label in samples])


def label_table(labels: np.ndarray, units: Sequence[str] = LABEL_UNITS) -> list[LabelColumn]:
    """One `LabelColumn` per label column of (N, 5) labels; rows of NaN (no ship) are skipped."""
    dtype = str(np.asarray(labels).dtype)
    ships = ship_rows(labels)
    return [
        LabelColumn(
            index=index,
            name=LABEL_NAMES[index],
            unit=units[index],
            minimum=float(ships[:, index].min()),
            maximum=float(ships[:, index].max()),
            integer_valued=bool(np.all(ships[:, index] == np.round(ships[:, index]))),
            dtype=dtype,
        )
        for index in range(ships.shape[1])
    ]


def generator_rules(image_size: int = IMAGE_SIZE) -> tuple[str, ...]:
    """How the generator draws each label column, in words built from its constants."""
    image_size = check_count(image_size, "image_size", minimum=2 * EDGE_MARGIN + 1)
    low, high = EDGE_MARGIN, image_size - EDGE_MARGIN
    mean, std = LENGTH_TO_WIDTH
    return (
        f"integer in [{low}, {high})",
        f"integer in [{low}, {high})",
        "uniform in [0, 2 pi)",
        f"integer in [{SIZE_RANGE[0]}, {SIZE_RANGE[1]})",
        f"width * |N({mean}, {std})|",
    )


def generator_bounds(image_size: int = IMAGE_SIZE) -> tuple[tuple[float, ...], ...]:
    """The ends of each label column's range, as the generator draws it ((), for height,
    which has none). Integer ranges are half-open: [low, high)."""
    image_size = check_count(image_size, "image_size", minimum=2 * EDGE_MARGIN + 1)
    position = (float(EDGE_MARGIN), float(image_size - EDGE_MARGIN))
    return (position, position, (0.0, 2 * np.pi), tuple(float(end) for end in SIZE_RANGE), ())


def describe_labels(
    labels: np.ndarray, rules: Sequence[str] | None = None, units: Sequence[str] = LABEL_UNITS
) -> str:
    """A printable table of `label_table(labels, units)`, with a column of `rules` if given."""
    columns = label_table(labels, units)
    header = ["index", "name", "unit", "min seen", "max seen", "whole numbers", "dtype"]
    rows = [
        [
            column.index,
            column.name,
            column.unit,
            f"{column.minimum:.4g}",
            f"{column.maximum:.4g}",
            "yes" if column.integer_valued else "no",
            column.dtype,
        ]
        for column in columns
    ]
    if rules is not None:
        if len(rules) != len(rows):
            raise ValueError(f"rules must hold one entry per label column ({len(rows)})")
        header.append("drawn as")
        for row, rule in zip(rows, rules, strict=True):
            row.append(rule)
    return format_table(header, rows)


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table: columns padded to their widest cell, a rule under the header."""
    cells = [[str(cell) for cell in header]] + [[str(cell) for cell in row] for row in rows]
    if any(len(row) != len(header) for row in cells):
        raise ValueError(f"rows must all have {len(header)} cells, like the header")
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def sample_labels(count: int, rng: np.random.Generator, chunk_size: int = 1000) -> np.ndarray:
    """Labels (count, 5) float32 of `count` fresh samples from `generate_batch`, in chunks.

    The images are drawn too (the label and image share one stream) but not kept, so memory
    stays at one chunk of images whatever `count` is.
    """
    count = check_count(count, "count", minimum=1)
    chunk_size = check_count(chunk_size, "chunk_size", minimum=1)
    chunks = []
    for start in range(0, count, chunk_size):
        chunks.append(generate_batch(min(chunk_size, count - start), rng)[1])
    return np.concatenate(chunks)


def ship_share(labels: np.ndarray) -> float:
    """Share of (N, 5) label rows that describe a ship (rows without NaN), in [0, 1]."""
    boxes = check_boxes(labels, "labels")
    if not len(boxes):
        raise ValueError("labels must hold at least one row")
    return float(np.mean(has_box(boxes)))


def turn_boxes(boxes: np.ndarray, yaw_offset_rad: float | np.ndarray) -> np.ndarray:
    """Boxes (N, 5) with `yaw_offset_rad` added to the yaw, wrapped into [0, 2 pi)."""
    turned = check_boxes(boxes, "boxes").copy()
    turned[:, 2] = np.mod(turned[:, 2] + yaw_offset_rad, 2 * np.pi)
    return turned


def outline_hull(boxes: np.ndarray) -> np.ndarray:
    """Nose and the two wing tips of each ship, (N, 5) boxes -> (N, 3, 2) image (x, y) points.

    These three points hold the whole outline: the tail notch lies on the line from the
    wing midpoint to the nose whenever the tail ratio is in [0, 1] (always, in practice).
    """
    boxes = check_boxes(boxes, "boxes")
    local = ship_outline_local(boxes[:, 3], boxes[:, 4], np.zeros(len(boxes)))[:, [0, 1, 3]]
    return local @ rotation_matrices(boxes[:, 2]) + boxes[:, None, :2]


def outline_leaves_image(boxes: np.ndarray, image_size: int = IMAGE_SIZE) -> np.ndarray:
    """(N,) bool: does the drawn outline run past the image edge (so some pixels are lost)?

    The generator rounds the outline's corners to whole pixels and draws straight segments
    between them, so the outline is clipped exactly when a rounded corner falls outside
    [0, image_size - 1]. Rows of NaN (no ship) give False.
    """
    image_size = check_count(image_size, "image_size", minimum=1)
    boxes = check_boxes(boxes, "boxes")
    leaves = np.zeros(len(boxes), dtype=bool)
    ships = has_box(boxes)
    corners = np.round(outline_hull(boxes[ships]))
    leaves[ships] = ((corners < 0) | (corners > image_size - 1)).any(axis=(1, 2))
    return leaves


def box_leaves_image(boxes: np.ndarray, image_size: int = IMAGE_SIZE) -> np.ndarray:
    """(N,) bool: does any corner of the label box lie outside the image's area?

    The image covers [-0.5, image_size - 0.5] on both axes (pixel centres sit on integers).
    Rows of NaN (no ship) give False.
    """
    image_size = check_count(image_size, "image_size", minimum=1)
    boxes = check_boxes(boxes, "boxes")
    leaves = np.zeros(len(boxes), dtype=bool)
    ships = has_box(boxes)
    corners = box_corners(boxes[ships])
    leaves[ships] = ((corners < -0.5) | (corners > image_size - 0.5)).any(axis=(1, 2))
    return leaves


# --- Chapter 2: what a threshold keeps ---------------------------------------------------


def noise_pixel_density(values: np.ndarray, noise_level: float = NOISE_LEVEL) -> np.ndarray:
    """Density of a background pixel's value, uniform on [0, noise_level): same shape as values."""
    noise_level = _check_noise_level(noise_level)
    values = np.asarray(values, dtype=np.float64)
    return np.where((values >= 0) & (values < noise_level), 1 / noise_level, 0.0)


def ship_pixel_density(values: np.ndarray, noise_level: float = NOISE_LEVEL) -> np.ndarray:
    """Density of an outline pixel's value v = max(U(0, 1), noise_level * U(0, 1)).

    P(v <= x) = x * min(x / noise_level, 1), so the density is 2x / noise_level below the
    noise level and 1 from there up to 1. Same shape as `values`.
    """
    noise_level = _check_noise_level(noise_level)
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
    cutoff = _check_cutoff(cutoff)
    noise_level = _check_noise_level(noise_level)
    if cutoff <= noise_level:
        return 2 * cutoff / 3
    # Integrate v * density over [0, noise_level) and [noise_level, cutoff); P(v < cutoff) = cutoff.
    first_moment = 2 * noise_level**2 / 3 + (cutoff**2 - noise_level**2) / 2
    return first_moment / cutoff


def noise_pixel_mean(cutoff: float = 1.0, noise_level: float = NOISE_LEVEL) -> float:
    """Mean value of a background pixel among those below `cutoff` (derived, not sampled)."""
    cutoff = _check_cutoff(cutoff)
    noise_level = _check_noise_level(noise_level)
    return min(cutoff, noise_level) / 2


def classify_pixels(ship_layer: np.ndarray, line_layer: np.ndarray) -> np.ndarray:
    """Pixel class codes (N, 200, 200) int8 from the layers: 0 ship, 1 line, 2 noise.

    A pixel is `ship` if the outline was drawn there, else `line` if a noise line was,
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
        """(T,): of all the pixels a threshold keeps (pooled), the share that belongs to a ship."""
        kept = self.kept_counts.sum(axis=0)
        return kept[:, 0] / kept.sum(axis=1)

    def mean_below(self) -> np.ndarray:
        """(T, 3): mean raw value of each class's pixels below each threshold (NaN if none)."""
        below = self.pixel_counts.sum(axis=0) - self.kept_counts.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(below > 0, self.below_sums / np.maximum(below, 1), np.nan)

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
        raise ValueError("pixel_classes must hold only the codes 0 (ship), 1 (line), 2 (noise)")
    levels = np.array([check_fraction(float(t), "thresholds") for t in thresholds])
    if not levels.size:
        raise ValueError("thresholds must hold at least one value")
    bins = check_count(bins, "bins", minimum=1)

    flat = images.reshape(len(images), -1).astype(np.float64)
    masks = [(classes == code).reshape(len(images), -1) for code in range(3)]
    pixel_counts = np.stack([mask.sum(axis=1) for mask in masks], axis=1)
    kept_counts = np.zeros((len(images), levels.size, 3), dtype=np.int64)
    below_sums = np.zeros((levels.size, 3))
    outline_snr = np.full((len(images), levels.size), np.nan)
    ship, background = masks[0], ~masks[0]
    n_ship = pixel_counts[:, 0]
    n_background = background.sum(axis=1)
    for column, level in enumerate(levels):
        kept = flat >= level
        for code, mask in enumerate(masks):
            kept_counts[:, column, code] = (kept & mask).sum(axis=1)
            below_sums[column, code] = flat[~kept & mask].sum()
        values = np.where(kept, flat, 0.0)
        ship_mean = (values * ship).sum(axis=1) / np.maximum(n_ship, 1)
        background_mean = (values * background).sum(axis=1) / np.maximum(n_background, 1)
        spread = ((values - background_mean[:, None]) ** 2 * background).sum(axis=1)
        background_std = np.sqrt(spread / np.maximum(n_background, 1))
        valid = (n_ship > 0) & (background_std > 0)
        outline_snr[valid, column] = (
            np.sqrt(n_ship[valid])
            * (ship_mean[valid] - background_mean[valid])
            / background_std[valid]
        )
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


def _check_noise_level(noise_level: float) -> float:
    noise_level = check_fraction(noise_level, "noise_level")
    if noise_level == 0:
        raise ValueError("noise_level must be > 0 for a noise density to exist")
    return noise_level


def _check_cutoff(cutoff: float) -> float:
    cutoff = check_fraction(cutoff, "cutoff")
    if cutoff == 0:
        raise ValueError("cutoff must be > 0: no pixel value lies below 0")
    return cutoff


# --- Chapter 3: label scales and the yaw -------------------------------------------------


def mean_label_predictor(labels: np.ndarray) -> np.ndarray:
    """The naive predictor: every ship row predicted as the mean ship label, (N, 5) -> (N, 5)."""
    boxes = ship_rows(labels)
    return np.broadcast_to(boxes.mean(axis=0), boxes.shape).copy()


def component_loss_shares(
    predictions: np.ndarray, labels: np.ndarray, scale: np.ndarray | None = None
) -> np.ndarray:
    """(5,) share of an MSE loss that each label column contributes; the shares sum to 1.

    Both arrays (N, 5), ships only, are divided by `scale` (5,) first (None: raw units), as a
    network trained on scaled targets would see them.
    """
    errors = _scaled_errors(predictions, labels, scale)
    per_column = np.mean(errors**2, axis=0)
    return per_column / per_column.sum()


def component_gradient_shares(
    predictions: np.ndarray, labels: np.ndarray, scale: np.ndarray | None = None
) -> np.ndarray:
    """(5,) share of the mean |gradient| of the MSE with respect to each output; sums to 1.

    The MSE's gradient for output k is proportional to that output's error, so this is the
    share of mean absolute (scaled) error per column: how hard each output gets pushed.
    """
    errors = _scaled_errors(predictions, labels, scale)
    per_column = np.mean(np.abs(errors), axis=0)
    return per_column / per_column.sum()


LARGEST_YAW_LOSS = {"raw": 1.0, "sincos": 2.0, "sincos2": 2.0}
"""The supremum of `encoded_yaw_loss` per encoding: codes at opposite ends (raw: 0 and 1) or
opposite points of the unit circle (the mean of the two squared differences is then 2)."""


def encoded_yaw_loss(
    yaw_true_rad: np.ndarray,
    yaw_pred_rad: np.ndarray,
    encoding: str = "raw",
    relative: bool = False,
) -> np.ndarray:
    """(N,) squared error between the codes of true and predicted yaw, averaged over the code.

    'raw' codes yaw as yaw / 2 pi (the seed's scaling), 'sincos' as (sin, cos) of yaw and
    'sincos2' as (sin, cos) of 2 * yaw; see `preprocessing.encode_yaw`. With `relative`, the
    loss is divided by its largest possible value (`LARGEST_YAW_LOSS`), so it lies in [0, 1].
    """
    yaw_true_rad, yaw_pred_rad = _yaw_pair(yaw_true_rad, yaw_pred_rad)
    difference = encode_yaw(yaw_pred_rad, encoding) - encode_yaw(yaw_true_rad, encoding)
    loss = np.mean(difference**2, axis=1)
    return loss / LARGEST_YAW_LOSS[encoding] if relative else loss


@dataclass(frozen=True)
class WrapAround:
    """What a fixed angular error does to the raw yaw loss over many true yaws.

    crossing_share: share of pairs whose prediction lies across the 0 / 2 pi seam;
    crossing_loss_share: share of the summed raw-code loss those pairs carry;
    mean_loss: mean loss per encoding; max_angle_error_rad: the largest true angular error.
    """

    crossing_share: float
    crossing_loss_share: float
    mean_loss: dict[str, float]
    max_angle_error_rad: float


def wrap_around(yaw_true_rad: np.ndarray, yaw_offset_rad: float) -> WrapAround:
    """Predict every yaw off by `yaw_offset_rad` (wrapped into [0, 2 pi)) and measure the cost."""
    yaw_true_rad = np.mod(np.asarray(yaw_true_rad, dtype=np.float64).reshape(-1), 2 * np.pi)
    if not yaw_true_rad.size or not np.all(np.isfinite(yaw_true_rad)):
        raise ValueError("yaw_true_rad must hold at least one finite angle")
    if not np.isfinite(yaw_offset_rad) or abs(yaw_offset_rad) >= np.pi:
        raise ValueError(
            f"yaw_offset_rad must be finite and within (-pi, pi), got {yaw_offset_rad}"
        )
    yaw_pred_rad = np.mod(yaw_true_rad + yaw_offset_rad, 2 * np.pi)
    crossing = np.abs(yaw_pred_rad - yaw_true_rad) > np.pi
    raw_loss = encoded_yaw_loss(yaw_true_rad, yaw_pred_rad, "raw")
    mean_loss = {
        encoding: float(np.mean(encoded_yaw_loss(yaw_true_rad, yaw_pred_rad, encoding)))
        for encoding in ("raw", "sincos", "sincos2")
    }
    return WrapAround(
        crossing_share=float(np.mean(crossing)),
        crossing_loss_share=float(raw_loss[crossing].sum() / raw_loss.sum()),
        mean_loss=mean_loss,
        max_angle_error_rad=float(np.max(wrapped_angle_error(yaw_pred_rad, yaw_true_rad))),
    )


def iou_vs_yaw_offset(box: np.ndarray, offsets_rad: np.ndarray) -> np.ndarray:
    """IoU of one box (5,) with copies of itself turned by each offset (K,) -> (K,)."""
    boxes = check_boxes(box, "box")
    if len(boxes) != 1 or np.isnan(boxes).any():
        raise ValueError("box must be one (x, y, yaw, width, height) row without NaN")
    offsets = np.asarray(offsets_rad, dtype=np.float64).reshape(-1)
    copies = np.repeat(boxes, offsets.size, axis=0)
    turned = copies.copy()
    turned[:, 2] += offsets
    return rotated_iou(copies, turned)


def _scaled_errors(
    predictions: np.ndarray, labels: np.ndarray, scale: np.ndarray | None
) -> np.ndarray:
    predictions = check_boxes(predictions, "predictions")
    labels = check_boxes(labels, "labels")
    check_same_length(predictions=predictions, labels=labels)
    if np.isnan(predictions).any() or np.isnan(labels).any():
        raise ValueError("predictions and labels must be ship rows only (no NaN)")
    if scale is None:
        scale = np.ones(predictions.shape[1])
    scale = np.asarray(scale, dtype=np.float64)
    if scale.shape != (predictions.shape[1],) or not np.all(np.isfinite(scale) & (scale > 0)):
        raise ValueError(f"scale must be {predictions.shape[1]} positive numbers, got {scale!r}")
    return (predictions - labels) / scale


def _yaw_pair(yaw_true_rad: np.ndarray, yaw_pred_rad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    true = np.asarray(yaw_true_rad, dtype=np.float64).reshape(-1)
    pred = np.asarray(yaw_pred_rad, dtype=np.float64).reshape(-1)
    check_same_length(yaw_true_rad=true, yaw_pred_rad=pred)
    if not (np.all(np.isfinite(true)) and np.all(np.isfinite(pred))):
        raise ValueError("yaw_true_rad and yaw_pred_rad must be finite angles in radians")
    return true, pred
