"""Load the official challenge code from the reference statement, for fixtures and benchmarks.

The official `helpers.py` is not copied into this repository: it is read at run time
from `shared/reference/PROBLEM.md` beside the checkout (`../shared/reference/PROBLEM.md`).
"""

from __future__ import annotations

import re
import types
from pathlib import Path

PROBLEM_PATHS = (
    Path(__file__).resolve().parents[1] / "shared" / "reference" / "PROBLEM.md",
    Path(__file__).resolve().parents[2] / "shared" / "reference" / "PROBLEM.md",
)


def find_problem_statement() -> Path | None:
    """Path of PROBLEM.md if a shared/ reference folder is next to (or inside) the checkout."""
    return next((path for path in PROBLEM_PATHS if path.is_file()), None)


def load_official_helpers() -> types.ModuleType:
    """The official helpers.py (make_data, score_iou, ...) as a module, read from PROBLEM.md."""
    path = find_problem_statement()
    if path is None:
        raise FileNotFoundError(
            "the official challenge statement was not found at any of "
            + ", ".join(str(p) for p in PROBLEM_PATHS)
        )
    match = re.search(r"\*\*helpers\.py\*\*\s*```python\n(.*?)```", path.read_text(), re.S)
    if match is None:
        raise ValueError(f"{path} has no helpers.py code block")
    module = types.ModuleType("official_helpers")
    exec(compile(match.group(1), f"{path}:helpers.py", "exec"), module.__dict__)  # noqa: S102
    return module
