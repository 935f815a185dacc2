"""Tests of spaceship_utils.tables: the package's one plain-text table formatter."""

import pytest

from spaceship_utils.tables import format_table


def test_format_table_aligns_columns():
    text = format_table(["name", "n"], [["x", 1], ["width", 22]])
    assert text.splitlines() == ["name   n", "-----  --", "x      1", "width  22"]
    with pytest.raises(ValueError, match="rows must all have 2 cells"):
        format_table(["name", "n"], [["x"]])
