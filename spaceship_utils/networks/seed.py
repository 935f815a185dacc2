"""The seed's two networks, layer for layer: a presence classifier and a box regressor.

Both take the thresholded image (N, 200, 200) and stack [Conv2D + ReLU, BatchNorm,
MaxPool] blocks with shrinking kernels, then a sigmoid dense head. Only `keras.layers`
is used, so the same code runs on any Keras backend (TensorFlow, JAX or PyTorch).
"""

from __future__ import annotations

from spaceship_utils.core.runtime import import_keras
from spaceship_utils.core.validation import IMAGE_SIZE

keras = import_keras()


layers = keras.layers


CLASSIFIER_BLOCKS = ((8, 11), (16, 9), (32, 7), (64, 5), (128, 3))
"""(filters, kernel size) per block of the classifier: 167,201 parameters in all."""


REGRESSOR_BLOCKS = CLASSIFIER_BLOCKS + ((256, 3), (512, 3))
"""(filters, kernel size) per block of the regressor: 1,643,557 parameters in all."""


CLASSIFIER_PARAMETERS = 167_201


REGRESSOR_PARAMETERS = 1_643_557


def _conv_stack(name: str, blocks: tuple[tuple[int, int], ...], outputs: int) -> keras.Model:
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE), name="thresholded_image")
    x = layers.Reshape((IMAGE_SIZE, IMAGE_SIZE, 1), name="add_channel")(inputs)
    for index, (filters, kernel) in enumerate(blocks, start=1):
        x = layers.Conv2D(filters, kernel, padding="same", activation="relu", name=f"conv{index}")(
            x
        )
        x = layers.BatchNormalization(name=f"norm{index}")(x)
        x = layers.MaxPooling2D(name=f"pool{index}")(x)
    x = layers.Flatten(name="flatten")(x)
    # float32 output even under a mixed-precision policy.
    outputs_layer = layers.Dense(outputs, activation="sigmoid", dtype="float32", name="head")
    return keras.Model(inputs, outputs_layer(x), name=name)


def build_classifier() -> keras.Model:
    """(N, 200, 200) thresholded images -> (N, 1) probability that a ship is present."""
    return _conv_stack("classifier", CLASSIFIER_BLOCKS, outputs=1)


def build_regressor() -> keras.Model:
    """(N, 200, 200) thresholded images -> (N, 5) box scaled to [0, 1] by the seed's vector."""
    return _conv_stack("regressor", REGRESSOR_BLOCKS, outputs=5)
