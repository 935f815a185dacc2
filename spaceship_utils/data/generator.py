"""The challenge's data: a faithful `make_data`, its separate layers, and a fast batched generator.

`make_data` reproduces the official generator bit for bit: for the same global NumPy
seed it returns the same float64 image and label (checked against golden digests in
the tests). It draws from the legacy global stream in the official order:

1. ship or not (probability 0.8), 2. the ship's centre, yaw, size, length-to-width and
tail-to-length ratios, 3. one uniform value per outline pixel, 4. for each noise line its
two end points and one uniform value per pixel, 5. the background noise.

`generate_batch` draws the same distributions for a whole batch at once from a
`numpy.random.Generator`; it does not follow the legacy stream and is many times faster.
Images index as `image[y, x]`: x is the column, y the row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.draw import line as raster_line

from spaceship_utils.core.geometry import rotation_matrices, ship_outline_local
from spaceship_utils.core.validation import IMAGE_SIZE, check_count, check_fraction

SHIP_PROBABILITY = 0.8
"""Chance that `make_data()` draws a ship when `has_spaceship` is None."""


NOISE_LEVEL = 0.8
"""Default upper bound of the uniform background noise."""


NO_LINES = 6
"""Default number of bright noise lines."""


EDGE_MARGIN = 10
"""The ship centre is drawn from [10, image_size - 10) on both axes."""


SIZE_RANGE = (18, 37)
"""The ship width is an integer drawn from [18, 37)."""


LENGTH_TO_WIDTH = (1.5, 0.2)
"""Mean and standard deviation of |N| giving height / width."""


TAIL_TO_LENGTH = (1 / 3, 0.1)
"""Mean and standard deviation of |N| placing the tail notch."""


LEGACY_LINE_END = 200
"""The official generator draws line end points from [0, 200) whatever the image size."""


LABEL_NAMES = ("x", "y", "yaw", "width", "height")
"""Label columns: centre x and y (px), yaw (rad), width across and height along the ship (px)."""


@dataclass(frozen=True)
class Layers:
    """The three layers of one generated sample, each (size, size) float64, image orientation.

    `image` is their pixel-wise maximum: exactly what `make_data` returns for the same seed.
    """

    noise: np.ndarray
    lines: np.ndarray
    ship: np.ndarray
    label: np.ndarray

    @property
    def image(self) -> np.ndarray:
        return np.maximum(np.maximum(self.ship, self.noise), self.lines)


@dataclass(frozen=True)
class _Pixels:
    """Sparse pixels of one layer, in the official (x, y) indexing before the final transpose."""

    xs: np.ndarray
    ys: np.ndarray
    values: np.ndarray


def make_data(
    has_spaceship: bool | None = None,
    noise_level: float = NOISE_LEVEL,
    no_lines: int = NO_LINES,
    image_size: int = IMAGE_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """One sample from the global NumPy stream, identical to the official generator.

    Returns `(image, label)`: image (image_size, image_size) float64 in [0, 1]; label (5,)
    float64 (x, y, yaw, width, height), or five NaNs when there is no ship.
    """
    label, ship, lines, noise = _draw_legacy(has_spaceship, noise_level, no_lines, image_size)
    for pixels in (ship, lines):
        # Within a layer the last write to a pixel wins (as in the official fancy
        # assignment); across layers the maximum wins.
        noise[pixels.xs, pixels.ys] = np.maximum(noise[pixels.xs, pixels.ys], pixels.values)
    return noise.T, label


def make_layers(
    has_spaceship: bool | None = None,
    noise_level: float = NOISE_LEVEL,
    no_lines: int = NO_LINES,
    image_size: int = IMAGE_SIZE,
) -> Layers:
    """Like `make_data`, but keep the noise, line and ship layers apart (for figures)."""
    label, ship, lines, noise = _draw_legacy(has_spaceship, noise_level, no_lines, image_size)
    dense = []
    for pixels in (ship, lines):
        layer = np.zeros((image_size, image_size))
        layer[pixels.xs, pixels.ys] = pixels.values
        dense.append(layer.T)
    return Layers(noise=noise.T, lines=dense[1], ship=dense[0], label=label)


def first_centred_layers(low: float = 60.0, high: float = 140.0) -> Layers:
    """The first `make_layers(has_spaceship=True)` sample whose ship's centre lies in
    [low, high] in both x and y (px), so the whole outline is well inside the image. Draws
    from NumPy's global stream, like `make_data`."""
    first, last = EDGE_MARGIN, IMAGE_SIZE - EDGE_MARGIN - 1  # where centres can be
    if not (low <= high and low <= last and high >= first):
        raise ValueError(
            f"need low <= high and an overlap with the centres' range [{first}, {last}], "
            f"got low={low}, high={high}: no sample would ever qualify"
        )
    while True:
        layers = make_layers(has_spaceship=True)
        if np.all((layers.label[:2] >= low) & (layers.label[:2] <= high)):
            return layers


def _draw_legacy(
    has_spaceship: bool | None, noise_level: float, no_lines: int, image_size: int
) -> tuple[np.ndarray, _Pixels, _Pixels, np.ndarray]:
    """Draw label, ship pixels, line pixels and noise from the legacy stream, in order."""
    noise_level = check_fraction(noise_level, "noise_level")
    no_lines = check_count(no_lines, "no_lines")
    image_size = check_count(image_size, "image_size", minimum=1)
    if has_spaceship is not None and not isinstance(has_spaceship, bool | np.bool_):
        raise ValueError(f"has_spaceship must be True, False or None, got {has_spaceship!r}")
    if no_lines and image_size < LEGACY_LINE_END:
        raise ValueError(
            f"image_size must be >= {LEGACY_LINE_END} when no_lines > 0: the official generator "
            f"draws line end points in [0, {LEGACY_LINE_END}); got {image_size}"
        )
    if has_spaceship is None:
        # np.random.choice([True, False], p=(0.8, 0.2)) draws one uniform u: True iff u < 0.8.
        has_spaceship = np.random.random_sample() < SHIP_PROBABILITY
    if has_spaceship and image_size <= 2 * EDGE_MARGIN:
        raise ValueError(f"image_size must be > {2 * EDGE_MARGIN} to hold a ship, got {image_size}")

    label = np.full(5, np.nan)
    ship = _Pixels(np.zeros(0, int), np.zeros(0, int), np.zeros(0))
    if has_spaceship:
        label, ship = _draw_legacy_ship(image_size)
    lines = _draw_legacy_lines(no_lines)
    noise = np.random.random_sample((image_size, image_size))
    noise *= noise_level
    return label, ship, lines, noise


def _draw_legacy_ship(image_size: int) -> tuple[np.ndarray, _Pixels]:
    centre = np.random.randint(EDGE_MARGIN, image_size - EDGE_MARGIN, size=2)
    yaw = np.random.random_sample() * 2 * np.pi
    width = np.random.randint(*SIZE_RANGE)
    length_to_width = abs(np.random.normal(*LENGTH_TO_WIDTH))
    tail_to_length = abs(np.random.normal(*TAIL_TO_LENGTH))
    height = width * length_to_width

    outline = ship_outline_local(width, height, tail_to_length) @ rotation_matrices(yaw) + centre
    corners = np.round(outline).astype(int)
    closed = np.vstack([corners, corners[:1]])
    segments = [raster_line(*closed[i], *closed[i + 1]) for i in range(len(corners))]
    xs = np.concatenate([segment[0] for segment in segments])
    ys = np.concatenate([segment[1] for segment in segments])
    inside = (xs >= 0) & (xs < image_size) & (ys >= 0) & (ys < image_size)
    values = np.random.random_sample(np.count_nonzero(inside))
    label = np.array([centre[0], centre[1], yaw, width, height], dtype=np.float64)
    return label, _Pixels(xs[inside], ys[inside], values)


def _draw_legacy_lines(no_lines: int) -> _Pixels:
    xs, ys, values = [], [], []
    for _ in range(no_lines):
        x_line, y_line = raster_line(*np.random.randint(0, LEGACY_LINE_END, size=4))
        xs.append(x_line)
        ys.append(y_line)
        values.append(np.random.random_sample(x_line.size))
    if not xs:
        return _Pixels(np.zeros(0, int), np.zeros(0, int), np.zeros(0))
    return _Pixels(np.concatenate(xs), np.concatenate(ys), np.concatenate(values))


def generate_batch(
    batch_size: int,
    rng: np.random.Generator,
    *,
    ship_probability: float = SHIP_PROBABILITY,
    noise_level: float = NOISE_LEVEL,
    no_lines: int = NO_LINES,
    image_size: int = IMAGE_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """A batch with the same distributions as `make_data`, drawn at once from `rng`.

    Returns images (batch_size, image_size, image_size) float32 in [0, 1] and labels
    (batch_size, 5) float32, a row of NaNs where there is no ship.
    """
    batch_size = check_count(batch_size, "batch_size", minimum=1)
    ship_probability = check_fraction(ship_probability, "ship_probability")
    noise_level = check_fraction(noise_level, "noise_level")
    no_lines = check_count(no_lines, "no_lines")
    image_size = check_count(image_size, "image_size", minimum=2 * EDGE_MARGIN + 1)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")

    images = rng.random((batch_size, image_size, image_size), dtype=np.float32)
    images *= np.float32(noise_level)
    labels = np.full((batch_size, 5), np.nan, dtype=np.float32)
    flat = images.reshape(-1)
    pixels_per_image = image_size * image_size

    has_ship = rng.random(batch_size) < ship_probability
    ship_images = np.flatnonzero(has_ship)
    if ship_images.size:
        label_rows = draw_ship_labels(ship_images.size, rng, image_size)
        labels[ship_images] = label_rows[:, :5]
        outline = ship_outline_local(label_rows[:, 3], label_rows[:, 4], label_rows[:, 5])
        outline = outline @ rotation_matrices(label_rows[:, 2]) + label_rows[:, None, :2]
        start = np.round(outline).astype(np.int64).reshape(-1, 2)
        end = np.round(np.roll(outline, -1, axis=1)).astype(np.int64).reshape(-1, 2)
        segment, xs, ys = _raster_segments(start, end)
        owner = ship_images[segment // 4]
        _paint_max(flat, owner, xs, ys, image_size, pixels_per_image, rng)

    if no_lines:
        ends = rng.integers(0, image_size, size=(batch_size * no_lines, 4))
        segment, xs, ys = _raster_segments(ends[:, :2], ends[:, 2:])
        _paint_max(flat, segment // no_lines, xs, ys, image_size, pixels_per_image, rng)
    return images, labels


def draw_ship_labels(
    count: int, rng: np.random.Generator, image_size: int = IMAGE_SIZE
) -> np.ndarray:
    """(count, 6) float64 rows: x, y, yaw, width, height and the tail-to-length ratio."""
    centre = rng.integers(EDGE_MARGIN, image_size - EDGE_MARGIN, size=(count, 2))
    yaw = rng.random(count) * 2 * np.pi
    width = rng.integers(*SIZE_RANGE, size=count)
    height = width * np.abs(rng.normal(*LENGTH_TO_WIDTH, size=count))
    tail = np.abs(rng.normal(*TAIL_TO_LENGTH, size=count))
    return np.column_stack([centre, yaw, width, height, tail]).astype(np.float64)


def _raster_segments(
    start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels of many digital line segments at once.

    `start`, `end`: (L, 2) integer (x, y) end points. Returns (segment index, x, y), each
    flat, with max(|dx|, |dy|) + 1 pixels per segment, both end points included.
    """
    delta = end - start
    counts = np.abs(delta).max(axis=1) + 1
    segment = np.repeat(np.arange(len(start)), counts)
    first = np.cumsum(counts) - counts
    step = np.arange(segment.size) - first[segment]
    fraction = step / np.maximum(counts - 1, 1)[segment]
    xs = start[segment, 0] + np.round(delta[segment, 0] * fraction).astype(np.int64)
    ys = start[segment, 1] + np.round(delta[segment, 1] * fraction).astype(np.int64)
    return segment, xs, ys


def _paint_max(
    flat: np.ndarray,
    owner: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    image_size: int,
    pixels_per_image: int,
    rng: np.random.Generator,
) -> None:
    """Give each in-image pixel a uniform value; keep the brighter of it and what is there."""
    inside = (xs >= 0) & (xs < image_size) & (ys >= 0) & (ys < image_size)
    index = owner[inside] * pixels_per_image + ys[inside] * image_size + xs[inside]
    values = rng.random(index.size, dtype=np.float32)
    flat[index] = np.maximum(flat[index], values)
