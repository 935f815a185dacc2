"""Label tables and label-box geometry: what the generator draws and where boxes fall.

Statistics of the (N, 5) labels of `spaceship_utils.data.generator` (ranges, the share of samples
with a ship, the rules each column is drawn by) and of the boxes they describe (turned
copies, the drawn outline's hull, whether an outline or a box runs past the image edge).
Boxes are (x, y, yaw, width, height) in pixels and radians, one row per sample, a row of
NaNs where there is no ship. Plain NumPy; chapters 1 and 3 print these numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spaceship_utils.core.geometry import box_corners, rotation_matrices, ship_outline_local
from spaceship_utils.core.tables import format_table
from spaceship_utils.core.validation import IMAGE_SIZE, check_boxes, check_count, has_box
from spaceship_utils.data.generator import (
    EDGE_MARGIN,
    LABEL_NAMES,
    LENGTH_TO_WIDTH,
    SIZE_RANGE,
    generate_batch,
    make_data,
)

LABEL_UNITS = ("px", "px", "rad", "px", "px")
"""Unit of each label column, in the order of `LABEL_NAMES`."""


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


def draw_samples(
    count: int, has_spaceship: bool | None | Sequence[bool | None] = None
) -> tuple[np.ndarray, np.ndarray]:
    """`count` samples of the official `make_data` (global NumPy stream), stacked.

    `has_spaceship` is passed to `make_data`: one value for every sample (None: a ship with
    the generator's probability), or a sequence of `count` values, one per sample.
    Returns images (count, 200, 200) float64 and labels (count, 5) float64.
    """
    count = check_count(count, "count", minimum=1)
    if has_spaceship is None or isinstance(has_spaceship, bool):
        has_spaceship = [has_spaceship] * count
    if len(has_spaceship) != count:
        raise ValueError(
            f"has_spaceship gives {len(has_spaceship)} values for {count} samples; "
            "pass one value, or one per sample"
        )
    samples = [make_data(flag) for flag in has_spaceship]
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
