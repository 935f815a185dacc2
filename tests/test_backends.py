"""Weights written under TensorFlow load and predict the same under the other Keras backends."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from spaceship_utils.data.generator import generate_batch
from spaceship_utils.pretrained import load_pretrained

PREDICT = """
import json, sys
import numpy as np
from spaceship_utils.pretrained import load_pretrained
images = np.load(sys.argv[1])
print(json.dumps(load_pretrained("baseline").predict_details(images).raw_boxes.tolist()))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_shipped_weights_predict_the_same_on_another_backend(backend, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"the {backend} backend is not installed (optional)")
    images = generate_batch(4, np.random.default_rng(5))[0]
    np.save(tmp_path / "images.npy", images)
    result = subprocess.run(
        [sys.executable, "-c", PREDICT, str(tmp_path / "images.npy")],
        env={**os.environ, "KERAS_BACKEND": backend},
        capture_output=True,
        text=True,
        check=True,
    )
    other = np.array(json.loads(result.stdout.strip().splitlines()[-1]))
    here = load_pretrained("baseline").predict_details(images).raw_boxes
    np.testing.assert_allclose(other, here, rtol=1e-3, atol=1e-3)
