"""The package's public surface: what `import spaceship_utils` costs and what it offers."""

import importlib
import json
import pkgutil
import re
import subprocess
import sys

import pytest

import spaceship_utils

FRAMEWORKS = ("keras", "tensorflow", "jax")
NEEDS_KERAS = {"load_pretrained", "evaluate_model"}


def frameworks_loaded_after(statement: str) -> list[str]:
    """Deep-learning frameworks in sys.modules after `statement`, in a fresh interpreter."""
    code = (
        f"import json, sys\n{statement}\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    return [name for name in loaded if name in FRAMEWORKS]


def test_importing_the_package_starts_no_deep_learning_framework():
    assert frameworks_loaded_after("import spaceship_utils") == []


def test_the_light_public_names_start_no_deep_learning_framework():
    light = sorted(set(spaceship_utils.__all__) - NEEDS_KERAS)
    assert light, "the package exports nothing that works without Keras"
    assert frameworks_loaded_after(f"from spaceship_utils import {', '.join(light)}") == []


def test_every_public_name_resolves_to_its_module_object():
    assert sorted(spaceship_utils.__all__) == sorted(spaceship_utils._EXPORTS)
    for name in spaceship_utils.__all__:
        module = importlib.import_module(f"spaceship_utils.{spaceship_utils._EXPORTS[name]}")
        assert getattr(spaceship_utils, name) is getattr(module, name)
    from spaceship_utils import ap_at_iou, make_data  # what the README teaches

    assert make_data.__module__ == "spaceship_utils.data.generator"
    assert ap_at_iou.__module__ == "spaceship_utils.core.metrics"


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'make_date'"):
        spaceship_utils.make_date  # noqa: B018


COMMANDS = {"train", "evaluate", "own_answers", "reproduce"}
"""The package's top-level modules that are command lines (`python -m spaceship_utils.NAME`)."""


def _listed(package) -> list[str]:
    return re.findall(r"^- `(\w+)`: ", package.__doc__, re.M)


def test_the_docstrings_list_every_folder_and_module_once():
    top = {info.name for info in pkgutil.iter_modules(spaceship_utils.__path__)}
    listed = _listed(spaceship_utils)
    assert len(listed) == len(set(listed)) and set(listed) | COMMANDS == top
    for command in COMMANDS:
        assert f"python -m spaceship_utils.{command}" in spaceship_utils.__doc__
    for info in pkgutil.iter_modules(spaceship_utils.__path__):
        if info.ispkg:
            package = importlib.import_module(f"spaceship_utils.{info.name}")
            modules = {module.name for module in pkgutil.iter_modules(package.__path__)}
            listed = _listed(package)
            assert len(listed) == len(set(listed)) and set(listed) == modules, info.name
