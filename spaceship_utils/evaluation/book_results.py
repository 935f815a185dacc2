"""Numbers a chapter records for the rest of the book, so each result has one source.

A chapter calls `record("baseline_score", result.score)`; the value is stored in the
notebook's outputs in the format MyST-NB's glue reads, so `book/results.md` quotes it with
``{glue:text}`notebooks/06_evaluation.ipynb::baseline_score:.4f` `` and a test checks the
README against `recorded_values`. It needs no MyST-NB at run time (Colab has none).
"""

from __future__ import annotations

import json
from pathlib import Path

RECORDED_DECIMALS = 6
"""Floats are recorded rounded to this many decimals: enough for any table, and a re-run
whose last few bits differ (CPU numerics depend on the order of operations) records the
same text, so a strict output comparison (nbval) still passes."""


GLUE_PREFIX = "application/papermill.record/"
"""The mime-type prefix under which MyST-NB looks for glued values that are not displayed."""


def record(name: str, value: float | int | str) -> None:
    """Store `value` under `name` in the running notebook's outputs, without showing it.

    A float is stored rounded to `RECORDED_DECIMALS` decimals.
    """
    from IPython.display import display

    if not isinstance(value, float | int | str):
        raise ValueError(f"value must be a number or a string, got {type(value).__name__}")
    if isinstance(value, float):
        value = round(value, RECORDED_DECIMALS)
    display(
        {GLUE_PREFIX + "text/plain": repr(value)},
        raw=True,
        metadata={"scrapbook": {"name": name, "mime_prefix": GLUE_PREFIX}},
    )


def recorded_values(notebook_path: str | Path) -> dict[str, str]:
    """{name: text} of every value a committed notebook recorded with `record`."""
    notebook = json.loads(Path(notebook_path).read_text())
    values = {}
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is not None:
                values[name] = "".join(output["data"][GLUE_PREFIX + "text/plain"])
    return values
