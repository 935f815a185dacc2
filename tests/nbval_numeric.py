"""A pytest plugin for `pytest --nbval`: numbers that come from a network's floats are
compared within a tolerance the statistic justifies; everything else stays exact.

nbval compares a re-run cell's text outputs with the committed ones character for
character. On another CPU (or another oneDNN setting) a network's outputs move by about
1e-5 px, because the kernels add in another order; a decision that sat on a threshold can
then flip for a sample or two, and a table built on such decisions changes in its last
digit. The method is as good there, so the test must not fail.

A cell whose outputs depend on network floats says so in its metadata, with the number of
samples its statistics are computed on (the smallest, if it prints several):

    "metadata": {"nbval_numeric": {"samples": 10000}}

For such a cell, the text with its numbers taken out must be the same (runs of spaces and
of table rule dashes may change width when a number does), and each number may differ
from the committed one by at most `allowed_difference`: one unit in the committed number's
last printed digit (a value near a rounding boundary can round either way), plus

- a count (an integer): the samples whose decision may flip, `flipped_samples(samples)`;
- a rate or a mean over the samples (a decimal in [-1, 1]): that many over `samples`;
- any other number (degrees, pixels, a fitted weight): `RELATIVE` of its size.

Cells without the metadata are compared exactly, as nbval does. `--nbval-exact` turns the
tolerance off everywhere, for refactors that must not change a single number
(`make test-exact`). `python -m tests.nbval_numeric COMMITTED RUN [--explain]` compares two
executed copies of a chapter the same way and lists every difference, not only the first
of each cell (with `--explain`, also every number that moved within its tolerance).
"""

from __future__ import annotations

import copy
import functools
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

METADATA_KEY = "nbval_numeric"

FLIPPED_SAMPLES = 5
FLIPPED_SHARE = 0.0008
"""A rate on n samples may move by max(FLIPPED_SAMPLES, FLIPPED_SHARE * n) samples: how many
discrete decisions (a threshold crossed, a box kept, a restart chosen) may flip between
CPUs. Seen: at most 4 of the 10,000 official samples and 2 of chapter 7's 2,048 validation
images (an AMD EPYC against the Intel Xeon that wrote the outputs, and oneDNN off against
on): allowed, 8 and 5. That is 0.0008 on 10,000 samples, a third of the standard error of
a score near 0.95 (0.0022), and 0.0024 on 2,048, half of it (0.0048). Leaving out a stage
or moving a threshold by 0.1 changes a score by more (the smallest stage of chapter 7, the
line vote, by 0.0010 on the official samples)."""

RELATIVE = 0.01
"""Share of its size by which a continuous figure (degrees, pixels, a fitted weight) may
move; seen: 1e-4 (a median axis error), one unit in the last digit (fitted weights)."""

NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")
"""A number as the chapters print it: 0.9555, -1.45, 1,855,168, 2e-05."""

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
    return float(number.replace(",", ""))


def flipped_samples(samples: int) -> float:
    """How many of `samples` may change their discrete decision on another CPU."""
    return max(FLIPPED_SAMPLES, FLIPPED_SHARE * samples)


def allowed_difference(committed: str, samples: int) -> tuple[float, str]:
    """How far a re-run may move the number printed as `committed` (a NUMBER match), and
    the rule that says so."""
    plain = committed.replace(",", "")
    value = _value(plain)
    if re.fullmatch(r"[-+]?\d+", plain):
        return flipped_samples(samples), "a count"
    if "e" in plain.lower():
        return RELATIVE * abs(value), "relative"
    last_digit = 10.0 ** -len(plain.partition(".")[2])
    if abs(value) <= 1.0:
        return last_digit + flipped_samples(samples) / samples, f"a rate on {samples:,} samples"
    return last_digit + RELATIVE * abs(value), "relative"


def _skeleton(text: str) -> str:
    return PADDING.sub(" ", NUMBER.sub("#", text))


def moved_numbers(committed: str, rerun: str, samples: int) -> list[Move] | None:
    """Every number that differs between the two texts; None when they differ in more than
    their numbers and padding (nothing is within tolerance then)."""
    if _skeleton(committed) != _skeleton(rerun):
        return None
    return [
        Move(old, new, *allowed_difference(old, samples))
        for old, new in zip(NUMBER.findall(committed), NUMBER.findall(rerun), strict=True)
        if old != new
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


def reconcile(
    rerun: list, committed: list, samples: int, sanitize: Callable[[str], str]
) -> tuple[list, list[str]]:
    """The re-run outputs with each text that matches the committed one within tolerance
    replaced by the committed text, and a line for each text that does not."""
    rerun = copy.deepcopy(rerun)
    notes = []
    if len(rerun) != len(committed):
        return rerun, notes
    for new, old in zip(rerun, committed, strict=True):
        if new.get("output_type") != old.get("output_type") or new.get("name") != old.get("name"):
            continue
        new_texts, old_texts = _texts(new), _texts(old)
        for field in new_texts.keys() & old_texts.keys():
            moves = moved_numbers(sanitize(old_texts[field]), sanitize(new_texts[field]), samples)
            if moves is not None and all(move.within for move in moves):
                if field == "text":
                    new["text"] = old_texts[field]
                else:
                    new["data"][field] = old_texts[field]
            elif moves is None:
                notes.append(f"{field}: the text differs in more than its numbers")
            else:
                notes += [f"{field}: {move}" for move in moves if not move.within]
    return rerun, notes


def samples_of(cell: dict, where: str) -> int | None:
    """The cell's declared sample count, None when it asks for an exact comparison."""
    spec = cell.get("metadata", {}).get(METADATA_KEY)
    if spec is None:
        return None
    samples = spec.get("samples") if isinstance(spec, dict) else None
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise pytest.UsageError(
            f"{where}: metadata {METADATA_KEY!r} must be {{'samples': a positive integer}}, "
            f"got {spec!r}"
        )
    return samples


def _compare_within_tolerance(item, samples: int, exact_compare, test, ref, skip_compare=None):
    test, notes = reconcile(test, ref, samples, item.sanitize)
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
        samples = samples_of(item.cell, f"{item.path.name} cell {item.cell_num}")
        if samples is not None:
            item.compare_outputs = functools.partial(
                _compare_within_tolerance, item, samples, item.compare_outputs
            )


def compare_notebooks(
    committed_path: Path,
    rerun_path: Path,
    sanitize: Callable[[str], str] = lambda text: text,
    explain: bool = False,
) -> list[str]:
    """Every difference between two executed copies of a chapter that `pytest --nbval` would
    fail on, by code cell (cells tagged nbval-skip or nbval-ignore-output left out); with
    `explain`, also every number that moved within its tolerance, and the rule that allows it."""
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
        return [f"{len(committed)} code cells committed, {len(rerun)} re-run"]
    report = []
    for number, (old, new) in enumerate(zip(committed, rerun, strict=True)):
        tags = old.metadata.get("tags", [])
        if "nbval-skip" in tags or "nbval-ignore-output" in tags:
            continue
        if old.source != new.source:
            report.append(f"cell {number}: the code differs, so its outputs are not compared")
            continue
        samples = samples_of(old, f"{committed_path.name} cell {number}")
        old_outputs = coalesce_streams(copy.deepcopy(old.outputs))
        new_outputs = coalesce_streams(copy.deepcopy(new.outputs))
        notes = []
        if samples is not None:
            if explain:
                report += [
                    f"cell {number} {field}: {move}"
                    for field, moves in _moves_by_field(new_outputs, old_outputs, samples, sanitize)
                    for move in moves
                ]
            new_outputs, notes = reconcile(new_outputs, old_outputs, samples, sanitize)
            report += [f"cell {number}: {note}" for note in notes]
        texts = [
            [{key: sanitize(value) for key, value in _texts(output).items()} for output in outputs]
            for outputs in (old_outputs, new_outputs)
        ]
        if texts[0] != texts[1] and not notes:
            exactly = " (compared exactly)" if samples is None else ""
            report.append(f"cell {number}: outputs differ{exactly}")
    return report


def _moves_by_field(rerun, committed, samples, sanitize):
    for new, old in zip(rerun, committed, strict=False):
        old_texts, new_texts = _texts(old), _texts(new)
        for field in sorted(old_texts.keys() & new_texts.keys()):
            moves = moved_numbers(sanitize(old_texts[field]), sanitize(new_texts[field]), samples)
            yield field, moves or []


def read_sanitizer(config_path: Path) -> Callable[[str], str]:
    """The substitutions of an nbval sanitize file, as one function."""
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns(config_path.read_text())

    def sanitize(text: str) -> str:
        for pattern, replacement in patterns:
            text = re.sub(pattern, replacement, text)
        return text

    return sanitize


if __name__ == "__main__":
    arguments = sys.argv[1:]
    explain = "--explain" in arguments
    committed_path, rerun_path = (Path(a) for a in arguments if a != "--explain")
    sanitize_file = Path(__file__).with_name("nbval_sanitize.cfg")
    lines = compare_notebooks(committed_path, rerun_path, read_sanitizer(sanitize_file), explain)
    print("\n".join(lines))
    failed = any(
        "OUT OF" in line or "outputs differ" in line or "more than" in line for line in lines
    )
    print("outside the tolerances" if failed else "within the tolerances")
    sys.exit(1 if failed else 0)
