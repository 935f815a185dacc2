"""A pytest plugin for `pytest --nbval`: numbers that come from a network's floats are
compared within a tolerance the statistic justifies; everything else stays exact.

nbval compares a re-run cell's text outputs with the committed ones character for
character. On another CPU (or with another oneDNN setting) a network's outputs move by
about 1e-5 px, because the kernels add in another order; a decision that sat on a threshold
can then flip for a sample or two, and a table built on such decisions changes in its last
digit or two. The method is as good there, so the test must not fail.

A cell whose outputs depend on network floats says so in its metadata, with the number of
samples behind its statistics (the smallest group whose statistic can move, if it prints
several):

    "metadata": {"nbval_numeric": {"samples": 10000}}

A cell that prints a fitted model's coefficients may add "relative": 0.1, say: one sample
near the boundary of a small fit (chapter 11's line vote, a logistic regression on a few
hundred images) moves its coefficients by a few percent on another CPU, while the score it
reaches, compared as a rate, stays put.

For such a cell, the text with its numbers taken out must be the same (runs of spaces and
table rules may change width when a number does), each number must keep its printed form
(as many decimals), and may differ from the committed one by one unit in its last printed
digit (a value next to a rounding boundary may round either way) plus, by its printed form:

- a whole number, a count: the samples whose decision may flip, `flipped_samples(samples)`;
- a decimal between -1 and 1, a rate or a mean over the samples: that many over `samples`;
- a percentage: the same, in percent;
- any other number (degrees, pixels, a fitted weight above 1): `RELATIVE` of its size.

Every number in such a cell gets its tolerance, a setting printed beside a table too: print
settings in cells of their own, which are compared exactly. Cells without the metadata are
compared exactly, as nbval does. `--nbval-exact` turns the tolerances off everywhere, for
refactors that must not change a single number (`make test-exact`).

`python -m tests.nbval_numeric COMMITTED RERUN [--explain]` compares two executed copies of
a chapter the same way and lists every difference, not only the first of each cell (with
`--explain`, also every number that moved within its tolerance, and the rule that allowed
it); it exits with 1 if `pytest --nbval` would fail.
"""

from __future__ import annotations

import argparse
import copy
import functools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

METADATA_KEY = "nbval_numeric"

FLIPPED_SAMPLES = 5
FLIPPED_SHARE = 0.0008
"""A statistic over n samples may move as if max(FLIPPED_SAMPLES, FLIPPED_SHARE * n) of
them had changed their discrete decision (a threshold crossed, a box kept, a restart
chosen) on another CPU. Seen: scores moved by at most 0.0005 on the 10,000 official samples
(4 of the about 8,000 samples the score counts) and 0.0012 on the 2,048 validation images
of chapters 7 and 9-11 (2 of about 1,650), between an AMD EPYC and the Intel Xeon that wrote
the outputs, and between oneDNN off and on. Allowed: 0.0008 on 10,000 samples, a third of
the standard error of a score near 0.95 there (0.0022), and 0.0024 on 2,048, half of it
(0.0048)."""

RELATIVE = 0.01
"""Share of its size by which any other number (degrees, pixels, a fitted weight above 1)
may move; seen: 1e-4 of a median axis error, one unit in the last digit of fitted weights."""

NUMBER = re.compile(
    r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?:[eE][-+]?\d+)?(\s?%)?"
)
"""A number as the chapters print it (0.9555, -1.45, 1,855,168, 2.0e-06, 45.2%); group 1
holds its decimals, group 2 its percent sign."""

PADDING = re.compile(r"[ \t]+|-{3,}")
"""Table padding and rules: they widen or narrow when a number in the column does."""


class Move(NamedTuple):
    """One number that differs between the committed text and a re-run's."""

    committed: str
    rerun: str
    allowed: float
    rule: str

    @property
    def within(self) -> bool:
        difference = abs(_value(self.rerun) - _value(self.committed))
        return difference <= self.allowed * (1 + 1e-9)

    def __str__(self) -> str:
        verdict = "within" if self.within else "OUT OF"
        return f"{self.committed} -> {self.rerun}: {verdict} +-{self.allowed:.3g} ({self.rule})"


def _value(number: str) -> float:
    return float(number.replace(",", "").rstrip("% "))


class Tolerance(NamedTuple):
    """What a cell declares: the samples behind its statistics, and optionally how far its
    other numbers may move (`relative`, for fitted coefficients that move more than 1 %)."""

    samples: int
    relative: float = RELATIVE


def flipped_samples(samples: int) -> float:
    """How many of `samples` may change their discrete decision on another CPU."""
    return max(FLIPPED_SAMPLES, FLIPPED_SHARE * samples)


def allowed_difference(
    committed: str, samples: int, relative: float = RELATIVE
) -> tuple[float, str]:
    """How far a re-run may move the number printed as `committed` (a NUMBER match), and
    the rule that says so: one unit in its last printed digit, plus what its kind may move."""
    mantissa, _, exponent = committed.replace(",", "").rstrip("% ").lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    last_digit = 10.0 ** (int(exponent or 0) - decimals)
    value = _value(committed)
    if committed.endswith("%"):
        return last_digit + 100 * flipped_samples(samples) / samples, "a percentage"
    if "." not in mantissa and not exponent:
        return last_digit + flipped_samples(samples), "a count"
    if abs(value) <= 1.0 and not exponent:
        return last_digit + flipped_samples(samples) / samples, f"a rate on {samples:,} samples"
    return last_digit + relative * abs(value), "relative"


def _skeleton(text: str) -> str:
    """The text with each number replaced by its printed form, and padding made one space."""
    marked = NUMBER.sub(lambda m: f"\0{len(m.group(1) or '')}{'%' if m.group(2) else ''}", text)
    return PADDING.sub(" ", marked)


def moved_numbers(
    committed: str, rerun: str, samples: int, relative: float = RELATIVE
) -> list[Move] | None:
    """Every number that differs between the two texts; None when they differ in more than
    their numbers and padding, or a number changed its printed form (nothing is within
    tolerance then). A text that is one number alone (a value `record` stored) may change
    its form."""
    bare = [NUMBER.fullmatch(text.strip()) for text in (committed, rerun)]
    if all(bare):  # a recorded value: repr() drops trailing zeros, so its form may change
        pairs = [tuple(bare)]
    elif _skeleton(committed) != _skeleton(rerun):
        return None
    else:
        pairs = zip(NUMBER.finditer(committed), NUMBER.finditer(rerun), strict=True)
    return [
        Move(old.group(0), new.group(0), *allowed_difference(old.group(0), samples, relative))
        for old, new in pairs
        if old.group(0) != new.group(0)
    ]


def _texts(output: dict) -> dict[str, str]:
    """{field: text} of the parts of one output nbval compares as text."""
    if output.get("output_type") == "stream":
        return {"text": output["text"]}
    data = output.get("data", {})
    return {
        key: value
        for key, value in data.items()
        if isinstance(value, str) and not key.startswith("image/")  # nbval skips images
    }


def _field_pairs(rerun: list, committed: list) -> Iterator[tuple[dict, str, str, str]]:
    """(re-run output, field, committed text, re-run text) for each text field the two
    output lists share, output by output."""
    for new, old in zip(rerun, committed, strict=True):
        if new.get("output_type") != old.get("output_type") or new.get("name") != old.get("name"):
            continue
        new_texts, old_texts = _texts(new), _texts(old)
        for field in sorted(new_texts.keys() & old_texts.keys()):
            yield new, field, old_texts[field], new_texts[field]


def reconcile(
    rerun: list, committed: list, tolerance: Tolerance, sanitize: Callable[[str], str]
) -> tuple[list, list[str]]:
    """The re-run outputs with each text that matches the committed one within tolerance
    replaced by the committed text, and a line for each text that does not."""
    rerun = copy.deepcopy(rerun)
    if len(rerun) != len(committed):
        return rerun, [f"{len(committed)} outputs committed, {len(rerun)} re-run"]
    notes = []
    for output, field, old, new in _field_pairs(rerun, committed):
        moves = moved_numbers(sanitize(old), sanitize(new), *tolerance)
        if moves is None:
            notes.append(f"{field}: the text differs in more than its numbers")
        elif all(move.within for move in moves):
            if field == "text":
                output["text"] = old
            else:
                output["data"][field] = old
        else:
            notes += [f"{field}: {move}" for move in moves if not move.within]
    return rerun, notes


def tolerance_of(cell: dict, where: str) -> Tolerance | None:
    """The cell's declared tolerance, None when it asks for an exact comparison."""
    spec = cell.get("metadata", {}).get(METADATA_KEY)
    if spec is None:
        return None
    samples = spec.get("samples") if isinstance(spec, dict) else None
    relative = spec.get("relative", RELATIVE) if isinstance(spec, dict) else None
    valid_samples = isinstance(samples, int) and not isinstance(samples, bool) and samples >= 1
    valid_relative = isinstance(relative, float) and 0 < relative < 1
    if not (valid_samples and valid_relative and set(spec) <= {"samples", "relative"}):
        raise pytest.UsageError(
            f"{where}: metadata {METADATA_KEY!r} must be {{'samples': a positive integer}}, "
            f"optionally with 'relative': a fraction, got {spec!r}"
        )
    return Tolerance(samples, relative)


def _compare_within_tolerance(item, tolerance, exact_compare, test, ref, skip_compare=None):
    test, notes = reconcile(test, ref, tolerance, item.sanitize)
    same = exact_compare(test, ref, skip_compare)
    if not same:
        item.comparison_traceback.extend(notes)
    return same


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("nbval").addoption(
        "--nbval-exact",
        action="store_true",
        help=f"compare every cell exactly, ignoring the '{METADATA_KEY}' tolerances",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("nbval_exact"):
        return
    for item in items:
        if type(item).__name__ != "IPyNbCell":
            continue
        tolerance = tolerance_of(item.cell, f"{item.path.name} cell {item.cell_num}")
        if tolerance is not None:
            item.compare_outputs = functools.partial(
                _compare_within_tolerance, item, tolerance, item.compare_outputs
            )


class Finding(NamedTuple):
    """One line of `compare_notebooks`' report; `failing` if `pytest --nbval` would fail."""

    cell: int | None
    text: str
    failing: bool

    def __str__(self) -> str:
        return self.text if self.cell is None else f"cell {self.cell}: {self.text}"


def compare_notebooks(
    committed_path: Path,
    rerun_path: Path,
    sanitize: Callable[[str], str] = lambda text: text,
    explain: bool = False,
) -> list[Finding]:
    """Every difference between two executed copies of a chapter, by code cell (cells
    tagged nbval-skip or nbval-ignore-output left out), judged as `pytest --nbval` with
    this plugin judges it; with `explain`, also every number that moved within its
    tolerance, and the rule that allows it."""
    from nbformat import read
    from nbval.plugin import coalesce_streams

    def code_cells(path: Path) -> list:
        cells = read(path, as_version=4).cells
        return [
            cell
            for cell in cells
            if cell.cell_type == "code"
            and "injected-parameters" not in cell.metadata.get("tags", [])
        ]

    committed, rerun = code_cells(committed_path), code_cells(rerun_path)
    if len(committed) != len(rerun):
        return [Finding(None, f"{len(committed)} code cells committed, {len(rerun)} re-run", True)]
    report = []
    for number, (old, new) in enumerate(zip(committed, rerun, strict=True)):
        tags = old.metadata.get("tags", [])
        if "nbval-skip" in tags or "nbval-ignore-output" in tags:
            continue
        if old.source != new.source:
            report.append(Finding(number, "the code differs: its outputs are not compared", True))
            continue
        tolerance = tolerance_of(old, f"{committed_path.name} cell {number}")
        old_outputs = coalesce_streams(copy.deepcopy(old.outputs))
        new_outputs = coalesce_streams(copy.deepcopy(new.outputs))
        notes = []
        if tolerance is not None:
            if explain and len(new_outputs) == len(old_outputs):
                report += [
                    Finding(number, f"{field}: {move}", False)
                    for _, field, before, after in _field_pairs(new_outputs, old_outputs)
                    for move in moved_numbers(sanitize(before), sanitize(after), *tolerance) or []
                    if move.within
                ]
            new_outputs, notes = reconcile(new_outputs, old_outputs, tolerance, sanitize)
            report += [Finding(number, note, True) for note in notes]
        texts = [
            [{key: sanitize(value) for key, value in _texts(output).items()} for output in outputs]
            for outputs in (old_outputs, new_outputs)
        ]
        if texts[0] != texts[1] and not notes:
            exactly = " (compared exactly)" if tolerance is None else ""
            report.append(Finding(number, f"outputs differ{exactly}", True))
    return report


def read_sanitizer(config_path: Path) -> Callable[[str], str]:
    """The substitutions of an nbval sanitize file, as one function."""
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns(config_path.read_text())

    def sanitize(text: str) -> str:
        for pattern, replacement in patterns:
            text = re.sub(pattern, replacement, text)
        return text

    return sanitize


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.nbval_numeric",
        description="Compare a re-run chapter with the committed one, as pytest --nbval does.",
    )
    parser.add_argument("committed", type=Path, help="the committed chapter (.ipynb)")
    parser.add_argument("rerun", type=Path, help="an executed copy of it (.ipynb)")
    parser.add_argument("--explain", action="store_true", help="list the moves within tolerance")
    args = parser.parse_args(argv)
    sanitizer = read_sanitizer(Path(__file__).with_name("nbval_sanitize.cfg"))
    findings = compare_notebooks(args.committed, args.rerun, sanitizer, args.explain)
    for finding in findings:
        print(finding)
    failing = any(finding.failing for finding in findings)
    print("outside the tolerances" if failing else "within the tolerances")
    return 1 if failing else 0


if __name__ == "__main__":
    raise SystemExit(main())
