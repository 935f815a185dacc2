"""What the code is running on, printed at the top of every chapter."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import sys
from collections.abc import Iterator
from types import ModuleType

import numpy as np

from spaceship_utils.core.validation import check_count


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send the process's C-level stderr (file descriptor 2) to /dev/null for a while.

    TensorFlow's C++ code prints several log lines at import time that no environment
    variable turns off; in a notebook they would clutter the first output of every chapter.
    Python exceptions still propagate and are printed once the block is left.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_keras() -> ModuleType:
    """Import Keras (and its backend) with the backend's import-time log lines hidden.

    Also hides TensorFlow's C++ info lines for the rest of the session (they would appear in
    the middle of training logs), unless TF_CPP_MIN_LOG_LEVEL is already set, and its
    Python warnings; and asks for TensorFlow's oneDNN kernels unless TF_ENABLE_ONEDNN_OPTS
    is already set. Both only act if TensorFlow is not imported yet.

    On Linux, TensorFlow turns oneDNN on by itself only on CPUs with the instructions it
    looks for (AVX-512 VNNI or BF16, AVX-VNNI, AMX), and runs slower kernels elsewhere:
    on a two-core AMD EPYC with AVX2, oneDNN trained the seed's classifier at 31 images/s
    instead of 12 and ran the baseline in 19 ms per image instead of 44
    (`benchmarks/onednn-2026-12-07.txt`). Set TF_ENABLE_ONEDNN_OPTS=0 to keep TensorFlow's
    own choice.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    if "keras" not in sys.modules:
        with native_stderr_silenced():
            import keras  # noqa: F401
    if sys.modules["keras"].backend.backend() == "tensorflow":
        # TensorFlow's Python warnings, e.g. that `predict` retraced for a new batch shape
        # (an evaluation's last, smaller batch): expected, and they print a memory address
        # that differs from run to run.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return sys.modules["keras"]


def describe_runtime() -> str:
    """One line: Python, NumPy, Keras and its backend, and the accelerators Keras can see."""
    keras = import_keras()
    backend = keras.backend.backend()
    return (
        f"Python {platform.python_version()}, NumPy {np.__version__}, Keras {keras.__version__} "
        f"on {backend}; accelerator: {_accelerator(backend)}"
    )


def _accelerator(backend: str) -> str:
    if backend == "jax":
        import jax

        devices = [d for d in jax.devices() if d.platform != "cpu"]
        return ", ".join(d.device_kind for d in devices) if devices else "none (CPU only)"
    if backend == "tensorflow":
        import tensorflow as tf

        with native_stderr_silenced():  # a CPU-only build logs a failed CUDA probe here
            gpus = tf.config.list_physical_devices("GPU")
        return f"{len(gpus)} GPU(s)" if gpus else "none (CPU only)"
    return "unknown for this backend"


def describe_machine() -> str:
    """The processor model and how many cores this process may use, e.g. for provenance."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    if hasattr(os, "sched_getaffinity"):  # Linux: the cores this process may run on
        cores = len(os.sched_getaffinity(0))
    else:  # macOS, Windows
        cores = os.cpu_count() or 1
    return f"{model}, {cores} cores"


def network_outputs(network, inputs: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """A Keras network's outputs (N, ...) on inputs (N, ...), `batch_size` at a time.

    The same numbers as `network.predict(inputs, batch_size=batch_size)`, without the data
    pipeline `predict` builds at every call (some 45 to 90 ms of setting up on the book's
    2-core machine, more than the refiner's work on a few dozen windows): a refined
    detector calls its networks a dozen times per batch of images. Empty inputs give
    (0, ...) outputs."""
    batch_size = check_count(batch_size, "batch_size", minimum=1)
    if len(inputs) == 0:
        return np.zeros((0, *network.output_shape[1:]), np.float32)
    return np.concatenate(
        [
            np.asarray(network.predict_on_batch(inputs[start : start + batch_size]))
            for start in range(0, len(inputs), batch_size)
        ]
    )
