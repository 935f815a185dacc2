"""What the chapters print about the machine, and what Keras's import leaves in the logs."""

import logging
import os

from spaceship_utils.core.runtime import describe_machine, describe_runtime, import_keras


def test_describe_runtime_names_python_numpy_keras_and_the_backend():
    keras = import_keras()
    line = describe_runtime()
    assert line.startswith("Python ") and f"Keras {keras.__version__}" in line
    assert f"on {keras.backend.backend()}" in line and "accelerator: " in line


def test_describe_machine_counts_the_cores_this_process_may_use():
    assert describe_machine().endswith(" cores")


def test_tensorflow_python_warnings_are_hidden():
    keras = import_keras()
    if keras.backend.backend() == "tensorflow":
        # e.g. "5 out of the last 23 calls ... triggered tf.function retracing" with an
        # address that changes per run, which would break the chapters' strict nbval.
        assert logging.getLogger("tensorflow").getEffectiveLevel() >= logging.ERROR


def test_onednn_is_asked_for_unless_the_reader_chose(monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    import_keras()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")  # e.g. `make test`'s cross-CPU check
    import_keras()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"
