"""Run every chapter headlessly in quick mode: `python -m tests.quick_mode SRC DST`.

Each chapter's quick parameters live in `tests/quick_parameters.json` (`QUICK_PARAMETERS`),
which must list exactly the chapters in SRC. papermill runs the
chapter with them, as a reader's parameterised run would, and writes the executed copy to
`DST` (run directories the chapters create land there too). A failing cell stops the run
with the chapter, the cell and the error named.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import papermill


class ChapterFailed(RuntimeError):
    """A chapter's cell raised while running in quick mode."""


QUICK_PARAMETERS = Path(__file__).with_name("quick_parameters.json")
"""{chapter file name: its quick parameters}, beside the tests rather than the chapters."""


def read_quick_parameters(source_dir: Path, table_path: Path = QUICK_PARAMETERS) -> dict[str, dict]:
    """{notebook file name: parameters} from `table_path`; it must list exactly the
    notebooks in `source_dir`."""
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
    return table


def run_quick_notebooks(
    source_dir: Path, target_dir: Path, table_path: Path = QUICK_PARAMETERS
) -> list[tuple[Path, float]]:
    """Execute every chapter with its quick parameters; return (executed copy, seconds)."""
    return [
        run_quick_notebook(source_dir, name, target_dir, table_path)
        for name in sorted(read_quick_parameters(source_dir, table_path))
    ]


def run_quick_notebook(
    source_dir: Path, name: str, target_dir: Path, table_path: Path = QUICK_PARAMETERS
) -> tuple[Path, float]:
    """Execute chapter `name` of `source_dir` with its quick parameters into `target_dir`
    (its working directory too); return (executed copy, seconds)."""
    parameters = read_quick_parameters(source_dir, table_path)[name]
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / name
    started = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(source_dir / name),
            str(target),
            parameters=parameters,
            cwd=str(target_dir),
            progress_bar=False,
        )
    except papermill.PapermillExecutionError as error:
        first_line = error.source.strip().splitlines()[0] if error.source.strip() else ""
        raise ChapterFailed(
            f"{name}, cell {error.cell_index} ({first_line!r}) failed in quick mode: "
            f"{error.ename}: {error.evalue} (executed copy: {target})"
        ) from None
    return target, time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m tests.quick_mode SOURCE_DIR TARGET_DIR")
    try:
        for path, seconds in run_quick_notebooks(Path(args[0]), Path(args[1])):
            print(f"quick mode: {path.name} ran in {seconds:.0f} s", flush=True)
    except ChapterFailed as error:
        raise SystemExit(f"quick mode: {error}") from None


if __name__ == "__main__":
    main()
