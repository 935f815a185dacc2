"""The environment is described three times, and the three must agree.

- constraints.txt: the exact set the book was built and tested with (`make` installs it);
- environment.yml: the same exact pins, for conda;
- pyproject.toml: what the package needs. Its runtime dependencies are compatible ranges, so
  that installing the package on Colab keeps the TensorFlow, Keras and NumPy already there;
  the `book` and `test` extras stay exact pins. Every range must admit the tested version.
"""

import platform
import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement  # packaging comes with pytest
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def pyproject_project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def exact_pins(lines: list[str]) -> dict[str, str]:
    """name -> version for `name==version` lines, failing on anything that is not a pin."""
    pins = {}
    for line in lines:
        requirement = Requirement(line)
        (specifier,) = requirement.specifier  # exactly one clause
        assert specifier.operator == "==", f"{line!r} is not an exact pin"
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"{name} is pinned twice"
        pins[name] = specifier.version
    return pins


def constraint_pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return exact_pins([line.split("#")[0] for line in lines if line.split("#")[0].strip()])


def conda_pins() -> dict[str, str]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_block = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    return exact_pins([pin for pin in pip_block if not pin.startswith("-e")])


def test_environment_yml_mirrors_constraints():
    assert conda_pins() == constraint_pins()


def test_every_runtime_range_admits_the_tested_version():
    pins = constraint_pins()
    for line in pyproject_project()["dependencies"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} has no tested version in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"pyproject.toml asks for {line!r}, but constraints.txt tests {name}=={pins[name]}"
        )


def test_runtime_dependencies_are_ranges_with_an_upper_bound():
    # An exact pin here would make the Colab setup cell replace Colab's own TensorFlow and
    # NumPy; a range open at the top would accept the next major release untested.
    for line in pyproject_project()["dependencies"]:
        operators = {specifier.operator for specifier in Requirement(line).specifier}
        assert "==" not in operators and "===" not in operators, f"{line!r} is an exact pin"
        assert ">=" in operators and "<" in operators, f"{line!r} needs a lower and upper bound"


def test_extras_are_the_tested_pins():
    pins = constraint_pins()
    for extra, lines in pyproject_project()["optional-dependencies"].items():
        for name, version in exact_pins(lines).items():
            assert pins.get(name) == version, f"[{extra}] {name}=={version} vs constraints.txt"


def test_constraints_cover_exactly_what_pyproject_asks_for():
    project = pyproject_project()
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += extra
    assert {canonicalize_name(Requirement(line).name) for line in lines} == set(constraint_pins())


def test_make_installs_with_the_constraints():
    makefile = (ROOT / "Makefile").read_text()
    assert "-c constraints.txt" in makefile


def test_every_stated_python_version_agrees_with_requires_python():
    requires = SpecifierSet(pyproject_project()["requires-python"])
    lower_bounds = [Version(spec.version) for spec in requires if spec.operator == ">="]
    assert len(lower_bounds) == 1, f"requires-python needs one lower bound, got {requires}"
    oldest = lower_bounds[0]
    # The interpreter running these tests is one the package claims to support.
    assert Version(platform.python_version()) in requires
    # The conda environment installs a supported Python.
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pythons = [
        item.split("=", 1)[1]
        for item in environment["dependencies"]
        if isinstance(item, str) and item.split("=", 1)[0] == "python"
    ]
    assert len(pythons) == 1 and Version(pythons[0]) in requires
    # ruff checks the syntax of the oldest supported Python; the Makefile refuses older ones.
    ruff = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]
    assert ruff["target-version"] == f"py{oldest.major}{oldest.minor}"
    makefile = (ROOT / "Makefile").read_text()
    bound = re.search(r"sys\.version_info >= \((\d+), (\d+)\)", makefile)
    assert bound is not None and Version(".".join(bound.groups())) == oldest
