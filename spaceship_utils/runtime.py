"""What the code is running on, printed at the top of every chapter."""

from __future__ import annotations

import platform


def describe_runtime() -> str:
    """One line: Python, NumPy, Keras and its backend, and the accelerators Keras can see."""
    import keras
    import numpy as np

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

        gpus = tf.config.list_physical_devices("GPU")
        return f"{len(gpus)} GPU(s)" if gpus else "none (CPU only)"
    return "unknown for this backend"


def has_accelerator() -> bool:
    """Whether Keras's backend sees a GPU (or another accelerator)."""
    import keras

    return not _accelerator(keras.backend.backend()).startswith("none")
