import numpy as np
import pytest

from spaceship_utils.networks.low_rank import factored_network, low_rank_factors
from spaceship_utils.networks.refiner import build_refiner, trunk_rank
from spaceship_utils.networks.verifier import build_verifier
from spaceship_utils.training.recipes import TrainingConfig


def _trainable(network) -> int:
    return sum(int(np.prod(weight.shape)) for weight in network.trainable_weights)


@pytest.fixture(scope="module")
def layer():
    rng = np.random.default_rng(0)
    kernel, bias = rng.normal(size=(12, 6)), rng.normal(size=6)
    # inputs whose pre-activations vary along two directions only, plus a little noise
    inputs = rng.normal(size=(500, 2)) @ rng.normal(size=(2, 12))
    inputs += 0.01 * rng.normal(size=(500, 12))
    return kernel, bias, inputs


def test_at_full_rank_the_two_layers_are_the_one(layer):
    kernel, bias, inputs = layer
    basis, second, new_bias, share = low_rank_factors(kernel, bias, inputs, rank=6)
    one_layer, two_layers = inputs @ kernel + bias, inputs @ basis @ second + new_bias
    np.testing.assert_allclose(two_layers, one_layer, atol=1e-4)
    assert share == pytest.approx(1.0)


def test_a_low_rank_keeps_the_directions_the_outputs_vary_along(layer):
    kernel, bias, inputs = layer
    basis, second, new_bias, share = low_rank_factors(kernel, bias, inputs, rank=2)
    assert basis.shape == (12, 2) and second.shape == (2, 6) and new_bias.shape == (6,)
    assert share > 0.999
    error = inputs @ basis @ second + new_bias - (inputs @ kernel + bias)
    assert np.abs(error).max() < 0.1 * np.abs(inputs @ kernel).std()
    # one direction only loses the second one: a large error
    basis, second, new_bias, share = low_rank_factors(kernel, bias, inputs, rank=1)
    assert share < 0.99
    assert np.abs(inputs @ basis @ second + new_bias - (inputs @ kernel + bias)).max() > 0.1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rank": 7}, "at most the layer's 6 units"),
        ({"rank": 0}, "rank"),
        ({"inputs": np.ones((5, 11))}, "inputs have 11 features"),
        ({"inputs": np.full((5, 12), np.nan)}, "NaN"),
        ({"bias": np.ones(5)}, "bias (U,)"),
    ],
)
def test_bad_factors_are_named(layer, change, message):
    kernel, bias, inputs = layer
    arguments = {"kernel": kernel, "bias": bias, "inputs": inputs, "rank": 2} | change
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        low_rank_factors(**arguments)


def test_the_trunks_dense_layer_at_rank_32_holds_a_seventh_of_its_weights():
    assert _trainable(build_refiner()) == 766_982
    assert _trainable(build_refiner(rank=32)) == 766_982 - 2048 * 256 + 2048 * 32 + 32 * 256
    assert _trainable(build_verifier(rank=32)) == 765_697 - 2048 * 256 + 2048 * 32 + 32 * 256


def test_a_factored_verifier_answers_as_the_full_one_at_full_rank():
    verifier = build_verifier()
    windows = np.random.default_rng(1).uniform(size=(300, 64, 64, 2)).astype(np.float32)
    factored, share = factored_network(verifier, build_verifier, windows, rank=256)
    assert share == pytest.approx(1.0)
    full, low = (network.predict(windows[:32], verbose=0) for network in (verifier, factored))
    np.testing.assert_allclose(low, full, atol=1e-4)


def test_a_factored_network_factors_again_to_a_lower_rank():
    verifier = build_verifier(rank=64)
    windows = np.random.default_rng(1).uniform(size=(300, 64, 64, 2)).astype(np.float32)
    again, share = factored_network(verifier, build_verifier, windows, rank=64)
    assert trunk_rank(again) == 64 and share == pytest.approx(1.0)
    full, low = (network.predict(windows[:32], verbose=0) for network in (verifier, again))
    np.testing.assert_allclose(low, full, atol=1e-4)
    lower, share = factored_network(verifier, build_verifier, windows, rank=8)
    assert trunk_rank(lower) == 8 and 0 < share < 1


def test_a_refiner_or_verifier_run_takes_a_rank_and_nothing_else():
    for task in ("refiner", "verifier"):
        config = TrainingConfig.recipe(task, detector_options={"rank": 64})
        assert config.detector_options == {"rank": 64}
    with pytest.raises(ValueError, match="the refiner has no option width .* it takes rank"):
        TrainingConfig.recipe("refiner", detector_options={"width": 16})
    with pytest.raises(ValueError, match="rank"):
        TrainingConfig.recipe("verifier", detector_options={"rank": 0})
    with pytest.raises(ValueError, match="the classifier has no option rank .* it takes none"):
        TrainingConfig.recipe("classifier", detector_options={"rank": 8})
