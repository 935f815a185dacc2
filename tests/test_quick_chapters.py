"""Every chapter in quick mode: papermill runs it headlessly with its parameters from
notebooks/quick_parameters.json, as a reader's parameterised run would, and keeps the
executed copy in _build/quick-notebooks. `make test` runs these beside the committed
chapters at their defaults (`pytest --nbval notebooks/`); `make unit` leaves them out."""

from pathlib import Path

import pytest

from spaceship_utils.quick_mode import read_quick_parameters, run_quick_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
QUICK_DIR = ROOT / "_build" / "quick-notebooks"


@pytest.mark.quick_chapters
@pytest.mark.parametrize("name", sorted(read_quick_parameters(NOTEBOOKS)))
def test_the_chapter_runs_in_quick_mode(name):
    executed, _ = run_quick_notebook(NOTEBOOKS, name, QUICK_DIR)
    assert executed.is_file()
