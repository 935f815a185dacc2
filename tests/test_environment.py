"""pyproject.toml and environment.yml must describe the same pinned environment."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def pyproject_pins() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        pins += extra
    return {pin.lower() for pin in pins}


def conda_pins() -> set[str]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_block = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    return {pin.lower() for pin in pip_block if not pin.startswith("-e")}


def test_every_dependency_is_pinned_exactly():
    assert all("==" in pin for pin in pyproject_pins())


def test_pyproject_and_environment_agree():
    assert pyproject_pins() == conda_pins()


def test_environment_python_is_supported():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in environment["dependencies"]
