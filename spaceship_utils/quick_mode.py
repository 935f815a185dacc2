"""Prepare quick-mode copies of the chapters for CI: `python -m spaceship_utils.quick_mode SRC DST`.

Each chapter's quick parameters live in `SRC/quick_parameters.json`. papermill injects
them after the notebook's `parameters` cell without running anything; `pytest --nbval-lax`
then executes the copies and compares the cells tagged `nbval-check-output`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def prepare_quick_notebooks(source_dir: Path, target_dir: Path) -> list[Path]:
    """Write a quick-mode copy of every notebook listed in quick_parameters.json; return them."""
    import papermill

    table_path = source_dir / "quick_parameters.json"
    if not table_path.is_file():
        raise FileNotFoundError(
            f"{table_path} is missing: it lists each chapter's quick parameters"
        )
    table = json.loads(table_path.read_text())
    listed = set(table)
    present = {path.name for path in source_dir.glob("*.ipynb")}
    if listed != present:
        raise ValueError(
            f"{table_path} must list exactly the notebooks in {source_dir}: "
            f"missing {sorted(present - listed)}, unknown {sorted(listed - present)}"
        )
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, parameters in sorted(table.items()):
        target = target_dir / name
        papermill.execute_notebook(
            str(source_dir / name),
            str(target),
            parameters=parameters,
            prepare_only=True,
            cwd=str(source_dir),
            progress_bar=False,
        )
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m spaceship_utils.quick_mode SOURCE_DIR TARGET_DIR")
    for path in prepare_quick_notebooks(Path(args[0]), Path(args[1])):
        print(f"quick copy: {path}")


if __name__ == "__main__":
    main()
