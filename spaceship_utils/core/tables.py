"""Plain-text tables: the one formatter behind every table the package and the book print."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table: columns padded to their widest cell, a rule under the header.

    Cells are turned into text with `str`, so format numbers before passing them in.
    Trailing spaces are removed from every line.
    """
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


def format_columns(first: str, columns: Mapping[str, Mapping[str, object]], spec: str = "") -> str:
    """A table with one column per entry of `columns` ({column: {row: value}}), rows in the
    order of the first column's keys, `first` heading the row names, values formatted with
    `spec` (e.g. ",d" or ".4f"). Every column must have the same rows."""
    if not columns:
        raise ValueError("columns must not be empty")
    rows = list(next(iter(columns.values())))
    for name, column in columns.items():
        if list(column) != rows:
            raise ValueError(f"column {name!r} has rows {list(column)}, expected {rows}")
    return format_table(
        (first, *columns),
        [(row, *(format(column[row], spec) for column in columns.values())) for row in rows],
    )
