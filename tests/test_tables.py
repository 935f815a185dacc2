"""Tests of spaceship_utils.core.tables: the package's one plain-text table formatter."""

import pytest

from spaceship_utils.core.tables import format_table


def test_format_table_aligns_columns():
    text = format_table(["name", "n"], [["x", 1], ["width", 22]])
    assert text.splitlines() == ["name   n", "-----  --", "x      1", "width  22"]
    with pytest.raises(ValueError, match="rows must all have 2 cells"):
        format_table(["name", "n"], [["x"]])


def test_format_columns_puts_one_mapping_in_each_column():
    from spaceship_utils.core.tables import format_columns

    text = format_columns(
        "IoU", {"a": {"0": 1200, "above 0.7": 5}, "b": {"0": 3, "above 0.7": 9}}, ",d"
    )
    assert text.splitlines() == [
        "IoU        a      b",
        "---------  -----  -",
        "0          1,200  3",
        "above 0.7  5      9",
    ]
    with pytest.raises(ValueError, match="column 'b' has rows"):
        format_columns("x", {"a": {"r": 1}, "b": {"s": 2}})
    with pytest.raises(ValueError, match="must not be empty"):
        format_columns("x", {})
