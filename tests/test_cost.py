import numpy as np
import pytest

from spaceship_utils.core.runtime import import_keras
from spaceship_utils.evaluation.cost import (
    cost_by_stage,
    design_cost,
    latency_ms_per_image,
    layer_flops,
    model_flops,
    trainable_parameters,
)
from spaceship_utils.networks.detector import build_detector
from spaceship_utils.networks.seed import build_classifier

keras = import_keras()


def test_flops_of_a_convolution_and_a_dense_layer_by_hand():
    inputs = keras.Input((10, 12, 3))
    conv = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="conv")
    x = conv(inputs)  # (5, 6, 4)
    dense = keras.layers.Dense(7, name="dense")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(x)))
    assert layer_flops(conv) == 2 * 5 * 6 * 4 * 3 * 3 * 3
    assert layer_flops(dense) == 2 * (5 * 6 * 4) * 7
    assert model_flops(model) == layer_flops(conv) + layer_flops(dense)


def test_unknown_layers_with_a_kernel_are_refused():
    inputs = keras.Input((8, 8, 2))
    layer = keras.layers.DepthwiseConv2D(3)
    keras.Model(inputs, layer(inputs))
    with pytest.raises(NotImplementedError, match="DepthwiseConv2D"):
        layer_flops(layer)


def test_classifier_costs_match_its_architecture():
    model = build_classifier()
    # 496 of the 167,201 weights are batch normalisation's running statistics.
    assert trainable_parameters(model) == 167_201 - 496
    first = 2 * 200 * 200 * 8 * 11 * 11 * 1
    assert model_flops(model) > first


def test_stages_add_up_to_the_whole_detector():
    model = build_detector(width=16, dilations=(1, 2), stride=4, block="basic")
    stages = cost_by_stage(model)
    assert [name for name, _, _ in stages] == [
        "stem1",
        "stem2",
        "stem3",
        "block1",
        "block2",
        "head",
    ]
    fast = build_detector(width=16, dilations=(1, 2))  # space-to-depth itself costs nothing
    assert [name for name, _, _ in cost_by_stage(fast)] == ["stem1", "block1", "block2", "head"]
    assert sum(f for _, _, f in cost_by_stage(fast)) == model_flops(fast)
    assert sum(p for _, p, _ in stages) == trainable_parameters(model)
    assert sum(f for _, _, f in stages) == model_flops(model)


def test_latency_is_per_image_and_checks_its_input():
    calls = []
    images = np.zeros((4, 200, 200), dtype=np.float32)
    latency = latency_ms_per_image(lambda x: calls.append(len(x)), images, repeats=3)
    assert calls == [4, 4, 4, 4] and latency >= 0
    with pytest.raises(ValueError):
        latency_ms_per_image(lambda x: x, np.zeros((4, 10, 10)), repeats=1)
    with pytest.raises(ValueError, match="repeats"):
        latency_ms_per_image(lambda x: x, images, repeats=0)


def test_compare_costs_sums_over_a_pipelines_networks():
    from spaceship_utils.evaluation.cost import compare_costs

    class TwoNetworks:
        networks = (build_detector(8, (1,)), build_classifier())

        def predict(self, images):
            return images

    rows = compare_costs({"pair": TwoNetworks()}, np.zeros((2, 200, 200)), repeats=1)
    (row,) = rows
    assert row["pipeline"] == "pair"
    assert row["parameters"] == sum(trainable_parameters(n) for n in TwoNetworks.networks)
    assert row["gflops"] == pytest.approx(sum(model_flops(n) for n in TwoNetworks.networks) / 1e9)
    assert row["ms_per_image"] >= 0

    class FourViews(TwoNetworks):
        network_passes = (4, 4)  # like symmetry.SymmetryAveraged over four views

    (four,) = compare_costs({"four": FourViews()}, np.zeros((2, 200, 200)), repeats=1)
    assert four["gflops"] == pytest.approx(4 * row["gflops"])
    assert four["parameters"] == row["parameters"]


def test_compare_costs_times_the_pipelines_in_turn_each_round():
    from spaceship_utils.evaluation.cost import compare_costs

    calls = []

    class Named:
        networks = ()

        def __init__(self, name):
            self.name = name

        def predict(self, images):
            calls.append(self.name)

    rows = compare_costs({"a": Named("a"), "b": Named("b")}, np.zeros((2, 200, 200)), repeats=3)
    assert calls == ["a", "b"] + ["a", "b"] * 3  # one untimed call each, then rounds
    assert [row["pipeline"] for row in rows] == ["a", "b"]
    with pytest.raises(ValueError, match="repeats"):
        compare_costs({"a": Named("a")}, np.zeros((2, 200, 200)), repeats=0)


def test_a_design_costs_what_its_network_costs_and_target_options_cost_nothing():
    design = {"width": 16, "dilations": [1, 2]}
    network = build_detector(width=16, dilations=(1, 2))
    expected = (trainable_parameters(network), model_flops(network) / 1e9)
    assert design_cost(design) == expected
    assert design_cost(design | {"regression_radius": 0}) == expected


def test_design_costs_read_each_runs_recorded_design(tmp_path):
    import json

    from spaceship_utils.evaluation.cost import design_costs

    design = {"width": 16, "dilations": [1, 2], "box_loss": "l1+riou"}
    (tmp_path / "config.json").write_text(json.dumps({"detector_options": design}))
    assert design_costs({"small": tmp_path}) == {"small": design_cost(design)}
