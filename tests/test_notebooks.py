"""The committed chapters as readers get them, and the quick-mode runner CI uses."""

import ast
import json
from pathlib import Path

import nbformat
import pytest

from tests.quick_mode import ChapterFailed, read_quick_parameters, run_quick_notebooks

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}
CHAPTERS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def parameters_cell(notebook) -> dict[str, object]:
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell must be tagged 'parameters'"
    values = {}
    for node in ast.parse(cells[0].source).body:
        assert isinstance(node, ast.Assign), "the parameters cell holds assignments only"
        values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_committed_chapters_carry_their_own_defaults(path):
    notebook = nbformat.read(path, as_version=4)
    tags = [tag for cell in notebook.cells for tag in cell.metadata.get("tags", [])]
    assert "injected-parameters" not in tags, "papermill's injected cell was committed"
    assert "papermill" not in notebook.metadata, "volatile papermill metadata was committed"
    defaults = parameters_cell(notebook)
    # Run All never trains for hours and never writes into the package.
    assert defaults.get("TRAIN_FROM_SCRATCH", False) is False
    assert "INSTALL_WEIGHTS" not in defaults
    for value in defaults.values():
        assert "spaceship_utils" not in str(value)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_quick_parameters_exist_in_the_chapter(path):
    quick = read_quick_parameters(NOTEBOOKS)[path.name]
    defaults = parameters_cell(nbformat.read(path, as_version=4))
    assert set(quick) <= set(defaults), f"unknown quick parameters {set(quick) - set(defaults)}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_papermill_understands_every_parameter(path):
    import papermill

    # papermill parses the cell itself; a line it cannot read (an '=' in a comment, say)
    # makes `-p NAME VALUE` warn "unknown parameter".
    inferred = papermill.inspect_notebook(path)
    assert set(inferred) == set(parameters_cell(nbformat.read(path, as_version=4)))


def _write_chapter(folder: Path, name: str, code: str) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = KERNEL
    parameters = nbformat.v4.new_code_cell("N = 1")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, nbformat.v4.new_code_cell(code)]
    nbformat.write(notebook, folder / name)


def test_quick_mode_names_the_chapter_and_cell_that_failed(tmp_path):
    source = tmp_path / "notebooks"
    source.mkdir()
    _write_chapter(source, "01_fine.ipynb", "print(N)")
    _write_chapter(source, "02_broken.ipynb", "assert N == 1, 'N was overridden'")
    table = tmp_path / "quick_parameters.json"
    table.write_text(json.dumps({"01_fine.ipynb": {"N": 2}, "02_broken.ipynb": {"N": 3}}))
    with pytest.raises(ChapterFailed) as error:
        run_quick_notebooks(source, tmp_path / "out", table)
    message = str(error.value)
    assert "02_broken.ipynb" in message and "assert N == 1" in message
    assert "AssertionError" in message and "N was overridden" in message
    executed = nbformat.read(tmp_path / "out" / "01_fine.ipynb", as_version=4)
    assert executed.cells[2].outputs[0]["text"] == "2\n"  # after the injected cell


def test_quick_parameters_must_list_every_chapter(tmp_path):
    _write_chapter(tmp_path, "01_a.ipynb", "")
    table = tmp_path / "quick_parameters.json"
    table.write_text("{}")
    with pytest.raises(ValueError, match="missing"):
        read_quick_parameters(tmp_path, table)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_committed_figures_stay_under_300_kb(path):
    import base64

    notebook = nbformat.read(path, as_version=4)
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            for kind, data in output.get("data", {}).items():
                if kind.startswith("image/"):
                    size = len(base64.b64decode(data))
                    assert size < 300_000, f"cell {index}: {kind} of {size // 1000} KB"


README_ROWS = [
    (
        "06_evaluation.ipynb",
        "| seed baseline, shipped weights",
        {1: "{baseline_score:.4f}", 2: "{baseline_mean_iou:.4f}"},
    ),
    (
        "07_a_detector_for_the_cpu.ipynb",
        "| one-network detector",
        {1: "{detector_score:.4f}", 2: "{detector_mean_iou:.4f}"},
    ),
    (
        "12_the_whole_pipeline.ipynb",
        "| shipped pipeline |",
        {1: "{line_free_score:.4f}", 2: "{line_free_mean_iou:.4f}"},
    ),
    (
        "12_the_whole_pipeline.ipynb",
        "| shipped pipeline, held-out seed",
        {
            1: "{held_out_score:.4f} (s.e. {held_out_standard_error:.4f})",
            2: "{held_out_mean_iou:.4f}",
        },
    ),
]
"""README's results table: the row's first cell, and each later cell as the chapter's
recorded values format it."""


@pytest.mark.parametrize("chapter, row_start, columns", README_ROWS)
def test_the_readme_quotes_the_scores_the_chapters_recorded(chapter, row_start, columns):
    from spaceship_utils.evaluation.book_results import recorded_values

    recorded = {key: float(value) for key, value in recorded_values(NOTEBOOKS / chapter).items()}
    readme = (NOTEBOOKS.parent / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith(row_start))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    for column, template in columns.items():
        assert cells[column] == template.format(**recorded), template


def test_the_readme_quotes_the_shipped_pipeline_s_size_and_speed():
    from spaceship_utils.evaluation.book_results import recorded_values

    recorded = recorded_values(NOTEBOOKS / "12_the_whole_pipeline.ipynb")
    readme = " ".join((NOTEBOOKS.parent / "README.md").read_text().split())
    parameters = int(float(recorded["shipped_parameters"]))
    assert f"{parameters:,} trainable parameters" in readme
    shipped, baseline = (
        float(recorded[f"{name}_ms_per_image"]) for name in ("shipped", "baseline")
    )
    assert f"{shipped:.1f} ms per image against the baseline's {baseline:.1f}" in readme


def test_recorded_values_read_back_what_record_stored(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = KERNEL
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "from spaceship_utils.evaluation.book_results import record\n"
            "record('score', 0.25)\nrecord('iou', 0.649542940612)\nrecord('samples', 10000)"
        ),
    ]
    path = tmp_path / "recorded.ipynb"
    nbformat.write(notebook, path)
    from nbclient import NotebookClient

    NotebookClient(notebook, kernel_name="python3").execute()
    nbformat.write(notebook, path)
    from spaceship_utils.evaluation.book_results import recorded_values

    assert recorded_values(path) == {"score": "0.25", "iou": "0.649543", "samples": "10000"}
    assert notebook.cells[0].outputs[0]["output_type"] == "display_data"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_no_markdown_line_starts_with_a_percent_sign(path):
    # MyST reads such a line as a comment and drops it from the book, mid-sentence.
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                assert not line.lstrip().startswith("%"), f"{path.name}: {line!r}"
