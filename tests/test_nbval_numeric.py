"""The notebook tests' numeric tolerance (tests/nbval_numeric.py): what it lets through on
another CPU, and what it still catches."""

import json
import re
from pathlib import Path

import nbformat
import pytest

from tests.nbval_numeric import (
    FLIPPED_SAMPLES,
    Tolerance,
    allowed_difference,
    compare_notebooks,
    moved_numbers,
    reconcile,
)

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
EVIDENCE = ROOT.parent / "shared" / "evidence" / "ch7-executed-amd-epyc.ipynb"
PART_3 = [
    ROOT / "notebooks" / f"{name}.ipynb"
    for name in (
        "07_a_detector_for_the_cpu",
        "08_taking_the_detector_apart",
        "09_the_refiner",
        "10_a_judge_and_restarts",
        "11_the_generators_likelihood",
        "12_the_whole_pipeline",
    )
]


def test_each_kind_of_number_has_its_own_allowance():
    count, rule = allowed_difference("271", samples=2048)
    assert (count, rule) == (1 + FLIPPED_SAMPLES, "a count")
    assert allowed_difference("271", samples=10_000)[0] == 1 + 8
    rate, rule = allowed_difference("0.9555", samples=10_000)
    assert rule == "a rate on 10,000 samples"
    assert 0.0005 < rate < 0.0022 / 2  # above 4 flipped ships, below half a standard error
    degrees, rule = allowed_difference("9.743", samples=10_000)
    assert rule == "relative" and degrees == pytest.approx(0.001 + 0.09743)
    percent, rule = allowed_difference("45.2%", samples=2048)
    assert rule == "a percentage" and percent == pytest.approx(0.1 + 100 * 5 / 2048)
    tiny, rule = allowed_difference("2.0e-06", samples=1000)
    assert rule == "relative" and tiny == pytest.approx(1e-7 + 2e-8)
    grouped, _ = allowed_difference("1,855,168", samples=2048)
    assert grouped == 1 + FLIPPED_SAMPLES


def test_a_rate_on_fewer_samples_may_move_further():
    assert allowed_difference("0.95", 2048)[0] > allowed_difference("0.95", 10_000)[0]


def test_table_padding_may_change_with_a_number_but_words_may_not():
    committed = "ships, the box a miss  9   5\n-----  ---\n"
    rerun = "ships, the box a miss  10  5\n------  ---\n"
    [move] = moved_numbers(committed, rerun, samples=2048)
    assert (move.committed, move.rerun, move.within) == ("9", "10", True)
    assert moved_numbers(committed, rerun.replace("miss", "hit"), 2048) is None
    assert moved_numbers("score 0.95", "score 0.95 0.96", 2048) is None
    assert moved_numbers("# 5 ships", "5 # ships", 2048) is None


def test_a_number_must_keep_its_printed_form():
    assert moved_numbers("score 0.9450", "score 0.945", 2048) is None
    assert moved_numbers("hit rate 45.2%", "hit rate 45.2", 2048) is None
    [move] = moved_numbers("hit rate 45.2%", "hit rate 45.4%", 2048)
    assert move.within


def _stream(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def test_a_rerun_within_tolerance_takes_the_committed_text():
    committed = [_stream("validation score 0.9372\n")]
    rerun = [_stream("validation score 0.9384\n")]
    reconciled, notes = reconcile(rerun, committed, Tolerance(2048), sanitize=str)
    assert reconciled[0]["text"] == "validation score 0.9372\n" and notes == []
    assert rerun[0]["text"] == "validation score 0.9384\n", "the re-run's outputs are not changed"


def test_a_missing_stage_is_out_of_tolerance():
    # Chapter 12's official scores with and without the line vote, its smallest stage.
    committed = [_stream("with the line vote  0.9472\n")]
    rerun = [_stream("with the line vote  0.9462\n")]
    reconciled, notes = reconcile(rerun, committed, Tolerance(10_000), sanitize=str)
    assert reconciled[0]["text"] == rerun[0]["text"]
    assert notes and "0.9472 -> 0.9462: OUT OF" in notes[0]


def test_a_cell_with_fitted_coefficients_may_declare_a_wider_relative_tolerance():
    committed = [_stream("fitted: evidence 2.37; intercept -1.45\n")]
    rerun = [_stream("fitted: evidence 2.42; intercept -1.52\n")]  # seen under SSE41
    assert reconcile(rerun, committed, Tolerance(2048), sanitize=str)[1]
    assert reconcile(rerun, committed, Tolerance(2048, relative=0.1), sanitize=str)[1] == []


def test_records_are_compared_within_tolerance_too():
    def record(text):
        return nbformat.v4.new_output(
            "display_data", data={"application/papermill.record/text/plain": text}
        )

    reconciled, notes = reconcile(
        [record("0.83969")], [record("0.839691")], Tolerance(10_000), sanitize=str
    )
    assert reconciled[0]["data"]["application/papermill.record/text/plain"] == "0.839691"


def _notebook_printing(path: Path, printed: str, committed: str, samples: int | None) -> None:
    cell = nbformat.v4.new_code_cell(f"print({printed!r})", execution_count=1)
    cell.outputs = [_stream(committed + "\n")]
    if samples is not None:
        cell.metadata["nbval_numeric"] = {"samples": samples}
    notebook = nbformat.v4.new_notebook(cells=[cell])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, path)


@pytest.mark.parametrize(
    ("printed", "samples", "options", "passes"),
    [
        ("score 0.9384", 2048, [], True),  # another CPU
        ("score 0.9472", 2048, [], False),  # a real change
        ("score 0.9384", None, [], False),  # an untagged cell is compared exactly
        ("score 0.9384", 2048, ["--nbval-exact"], False),  # make test-exact
    ],
)
def test_pytest_nbval_uses_the_tolerance(pytester, monkeypatch, printed, samples, options, passes):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    _notebook_printing(pytester.path / "chapter.ipynb", printed, "score 0.9372", samples)
    result = pytester.runpytest_subprocess(
        "-p",
        "tests.nbval_numeric",
        "--nbval",
        "chapter.ipynb",
        *options,
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == (0 if passes else 1), result.stdout.str()


def test_a_malformed_declaration_is_refused_by_name(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    _notebook_printing(pytester.path / "chapter.ipynb", "x", "x", samples=None)
    notebook = json.loads((pytester.path / "chapter.ipynb").read_text())
    notebook["cells"][0]["metadata"]["nbval_numeric"] = {"samples": "many"}
    (pytester.path / "chapter.ipynb").write_text(json.dumps(notebook))
    result = pytester.runpytest_subprocess("-p", "tests.nbval_numeric", "--nbval", "chapter.ipynb")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*chapter.ipynb cell 0*nbval_numeric*positive integer*"])


CHANGED_SINCE_THE_EVIDENCE = (
    "line_free_fit_table(",
    'results["refined detector"]',
    "refined_model.views",
    "restart_runs(",
    "outline_runs(",
    "restarts.boxes[0, ships]",
)
"""Cells whose code is the evidence's but whose pipeline is not. After the AMD run the shipped
pipeline's presence lost its line vote (the line-free tables gate with it) and the refiner
went from four window views to one: the refined detector's boxes, its printed settings, and
the restarts and outline fits that start from its boxes (chapter 11 fits outlines to its
refined boxes, `restarts.boxes[0]`) all changed with it."""


WRITTEN_DIFFERENTLY = {
    'plot_score_by_group(splits, overall=results["detector"].score)': "plot_score_by_group(splits)",
    """averaged = {
    "detector": models["detector"],
    **view_averages(models["detector"], "detector"),  # 4 and 8 views
}
averaged_results = evaluate_models(
    averaged, AVERAGED_SAMPLES, SEED, gallery_size=0, recorded=not RECOMPUTE
)""": """averaged = {
    "detector": models["detector"],
    "detector, 4 views": SymmetryAveraged(
        models["detector"], symmetries=SYMMETRIES[:4]
    ),
    "detector, 8 views": SymmetryAveraged(models["detector"]),
}
averaged_results = {
    name: evaluate_model(model, samples=AVERAGED_SAMPLES, seed=SEED)
    for name, model in averaged.items()
}""",
}
"""Code written differently since the AMD run whose printed outputs, the numbers compared,
are the same code's: the cell is matched with the evidence's. A figure that now draws the
overall score; chapter 8's test-time averages, now named by `view_averages` and read from
their recordings (made with the same detector, they print the same numbers)."""


def _as_in_the_evidence(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of a code cell with each piece of `WRITTEN_DIFFERENTLY` as the evidence wrote it."""
    copy = nbformat.from_dict(json.loads(json.dumps(cell)))
    for now, then in WRITTEN_DIFFERENTLY.items():
        copy.source = copy.source.replace(now, then)
    return copy


@pytest.mark.skipif(not EVIDENCE.is_file(), reason="needs ../shared/evidence beside the checkout")
def test_chapters_7_to_12_run_on_an_amd_cpu_are_within_the_tolerances(tmp_path):
    """The evidence is a run of the old chapter 7, before it was split into chapters 7-12,
    on an AMD CPU. Every tolerant cell (`nbval_numeric`) of the new chapters whose code is
    in it must hold the AMD run's outputs within its tolerances; the other cells read
    recorded predictions (the same on any CPU) or are new."""
    from tests.nbval_numeric import read_sanitizer

    sanitize = read_sanitizer(ROOT / "tests" / "nbval_sanitize.cfg")

    def without_figure_sizes(text: str) -> str:
        return re.sub(r"<Figure size \d+x\d+ with", "<Figure with", sanitize(text))

    evidence = {
        cell.source: cell for cell in nbformat.read(EVIDENCE, 4).cells if cell.cell_type == "code"
    }
    pairs = [
        (_as_in_the_evidence(cell), evidence[_as_in_the_evidence(cell).source])
        for path in PART_3
        for cell in nbformat.read(path, 4).cells
        if cell.cell_type == "code"
        and "nbval_numeric" in cell.metadata
        and _as_in_the_evidence(cell).source in evidence
        and not any(call in cell.source for call in CHANGED_SINCE_THE_EVIDENCE)
    ]
    assert len(pairs) >= 7, "the detector's and the unchanged refiner cells: the AMD run's code"
    committed, rerun = tmp_path / "committed.ipynb", tmp_path / "amd.ipynb"
    for path, cells in ((committed, [c for c, _ in pairs]), (rerun, [e for _, e in pairs])):
        nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    report = compare_notebooks(committed, rerun, without_figure_sizes)
    assert not [f for f in report if f.failing], [str(finding) for finding in report]
    moved = compare_notebooks(committed, rerun, without_figure_sizes, explain=True)
    assert sum(not f.failing for f in moved) >= 5, "the AMD run differs: it must have been seen"


def test_the_command_fails_where_pytest_would(tmp_path, capsys):
    from tests.nbval_numeric import main

    committed, rerun = tmp_path / "committed.ipynb", tmp_path / "rerun.ipynb"
    _notebook_printing(committed, "x", "score 0.9372", samples=2048)
    _notebook_printing(rerun, "x", "score 0.9384", samples=2048)
    assert main([str(committed), str(rerun), "--explain"]) == 0
    assert "0.9372 -> 0.9384: within" in capsys.readouterr().out
    _notebook_printing(rerun, "x", "score 0.9472", samples=2048)
    assert main([str(committed), str(rerun)]) == 1
    notebook = nbformat.read(rerun, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("print(1)"))
    nbformat.write(notebook, rerun)
    assert main([str(committed), str(rerun)]) == 1
    assert "1 code cells committed, 2 re-run" in capsys.readouterr().out
