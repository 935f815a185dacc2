"""A trained dense layer rewritten as two thin ones, with no retraining.

Most of the refiner's and the verifier's parameters sit in one layer: the dense layer of
their trunk (`refiner.window_features`), 2,048 inputs to 256 units, 524,544 weights. On the
windows the networks read, its 256 outputs before the ReLU vary along few directions:
32 of them carry about 98 % of the variance. So the layer's output z = x W + b is kept
on those directions: with P (256, r) the top r principal directions of x W over sample
windows and m its mean,

    z ≈ m + (x W - m) P Pᵀ = x (W P) Pᵀ + b + m (I - P Pᵀ),

which is a dense layer of r units without bias (`dense_basis`, kernel W P) followed by the
dense layer of 256 units (kernel Pᵀ, bias b + m (I - P Pᵀ)): 2,048·r + r·256 + 256
weights instead of 2,048·256 + 256. The network is then built with `rank` r
(`refiner.build_refiner`, `verifier.build_verifier`) and every other layer keeps its
weights.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from spaceship_utils.core.runtime import import_keras
from spaceship_utils.core.validation import check_count
from spaceship_utils.networks.refiner import BASIS_LAYER, trunk_rank

keras = import_keras()


FACTORED_LAYER = "dense"
"""The layer that is factored: the trunk's dense layer, read off its `flatten` layer."""


def layer_inputs(network: keras.Model, windows: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """What `network`'s `FACTORED_LAYER` reads on `windows` (N, size, size, 2): its
    flattened input (N, inputs), float32."""
    reader = keras.Model(network.input, network.get_layer("flatten").output)
    return np.asarray(reader.predict(windows, batch_size=batch_size, verbose=0), np.float32)


def low_rank_factors(
    kernel: np.ndarray, bias: np.ndarray, inputs: np.ndarray, rank: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The factors of a dense layer (kernel (I, U), bias (U,)) kept on the top `rank`
    principal directions of its pre-activations on `inputs` (N, I): the first layer's kernel
    (I, rank), the second's kernel (rank, U) and bias (U,), and the share of the
    pre-activations' variance the directions keep."""
    kernel, bias, inputs = _checked_layer(kernel, bias, inputs, rank)
    outputs = inputs @ kernel
    mean = outputs.mean(axis=0)
    variances, directions = np.linalg.eigh(np.cov(outputs, rowvar=False))
    order = np.argsort(variances)[::-1][:rank]
    kept = directions[:, order]  # (U, rank)
    share = float(variances[order].sum() / variances.sum())
    projection = kept @ kept.T
    new_bias = bias + mean @ (np.eye(len(mean)) - projection)
    return (
        (kernel @ kept).astype(np.float32),
        kept.T.astype(np.float32),
        new_bias.astype(np.float32),
        share,
    )


def _checked_layer(
    kernel: np.ndarray, bias: np.ndarray, inputs: np.ndarray, rank: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`low_rank_factors`' arrays as float64, after checking their shapes, their values
    and the rank; a ValueError naming what is wrong otherwise."""
    kernel, bias, inputs = (np.asarray(a, np.float64) for a in (kernel, bias, inputs))
    if kernel.ndim != 2 or bias.shape != kernel.shape[1:] or inputs.ndim != 2:
        raise ValueError(
            f"expected kernel (I, U), bias (U,) and inputs (N, I), got {kernel.shape}, "
            f"{bias.shape} and {inputs.shape}"
        )
    if inputs.shape[1] != kernel.shape[0]:
        raise ValueError(
            f"inputs have {inputs.shape[1]} features, the kernel reads {kernel.shape[0]}"
        )
    rank = check_count(rank, "rank", minimum=1)
    if rank > kernel.shape[1] or len(inputs) < 2:
        raise ValueError(
            f"rank must be at most the layer's {kernel.shape[1]} units and there must be at "
            f"least two inputs, got rank {rank} and {len(inputs)} inputs"
        )
    if not np.isfinite(inputs).all():
        raise ValueError("inputs hold NaN or infinite values")
    return kernel, bias, inputs


def factored_network(
    network: keras.Model, build: Callable[..., keras.Model], windows: np.ndarray, rank: int
) -> tuple[keras.Model, float]:
    """`network` (a refiner or verifier) with its `FACTORED_LAYER` factored to `rank` on
    the pre-activations of `windows` it reads (`low_rank_factors`), as a network from
    `build(rank=rank)` holding all its other weights; and the variance share kept. A network
    factored already is factored again from the product of its two thin layers."""
    kernel, bias = network.get_layer(FACTORED_LAYER).get_weights()
    if trunk_rank(network) is not None:
        kernel = network.get_layer(BASIS_LAYER).get_weights()[0] @ kernel
    basis, kernel, bias, share = low_rank_factors(
        kernel, bias, layer_inputs(network, windows), rank
    )
    factored = build(rank=rank)
    for layer in network.layers:
        if layer.weights and layer.name not in (FACTORED_LAYER, BASIS_LAYER):
            factored.get_layer(layer.name).set_weights(layer.get_weights())
    factored.get_layer(BASIS_LAYER).set_weights([basis])
    factored.get_layer(FACTORED_LAYER).set_weights([kernel, bias])
    return factored, share
