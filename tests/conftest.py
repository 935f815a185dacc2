"""Shared test set-up: figures render off-screen and are closed after every test; under CI
(CI=true) property tests draw the same examples on every run, so a red CI is reproducible."""

import os

import matplotlib
from hypothesis import settings

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")
