"""Every chapter in quick mode: papermill runs it headlessly with its parameters from
tests/quick_parameters.json, as a reader's parameterised run would, and keeps the
executed copy in _build/quick-notebooks. `make test` runs these beside the committed
chapters at their defaults (`pytest --nbval notebooks/`); `make unit` leaves them out."""

from pathlib import Path

import nbformat
import pytest

from tests.quick_mode import read_quick_parameters, run_quick_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
QUICK_DIR = ROOT / "_build" / "quick-notebooks"


@pytest.mark.slow
@pytest.mark.quick_chapters
@pytest.mark.parametrize("name", sorted(read_quick_parameters(NOTEBOOKS)))
def test_the_chapter_runs_in_quick_mode(name):
    # papermill raises (ChapterFailed) on the first cell that fails; what it wrote must be
    # the whole chapter run with the quick parameters.
    executed, _ = run_quick_notebook(NOTEBOOKS, name, QUICK_DIR)
    cells = nbformat.read(executed, as_version=4).cells
    code = [cell for cell in cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code if cell.source.strip())
    [injected] = [cell for cell in code if "injected-parameters" in cell.metadata.get("tags", [])]
    for parameter in read_quick_parameters(NOTEBOOKS)[name]:
        assert f"{parameter} = " in injected.source
