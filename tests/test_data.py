import json
from pathlib import Path

import numpy as np
import pytest

from spaceship_utils.data.generator import (
    EDGE_MARGIN,
    SIZE_RANGE,
    generate_batch,
    make_data,
    make_layers,
)
from tests.golden import digest_sample, digest_sequence
from tests.official_reference import find_problem_statement, load_official_helpers

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = json.loads((FIXTURES / "golden_make_data.json").read_text())
GOLDEN_SEQUENCE = json.loads((FIXTURES / "golden_make_data_sequence.json").read_text())


@pytest.mark.parametrize("row", GOLDEN, ids=lambda row: f"seed{row['seed']}")
def test_make_data_is_bit_identical_to_the_official_generator(row):
    np.random.seed(row["seed"])
    image, label = make_data(**row["kwargs"])
    assert digest_sample(image, label) == {key: row[key] for key in digest_sample(image, label)}


def test_consecutive_make_data_calls_match_the_official_sequence():
    # Each call must leave the global stream exactly where the official code leaves it, or
    # every later call differs; the digests of seeds 0..39 only check the first call after a
    # seed. Here: one seed, then calls with has_spaceship None, True and False in a row, then
    # the stream's next draws, all against digests of the official generator.
    ours = digest_sequence(make_data)
    assert ours["seed"] == GOLDEN_SEQUENCE["seed"]
    assert len(ours["calls"]) == len(GOLDEN_SEQUENCE["calls"])
    for index, (call, expected) in enumerate(
        zip(ours["calls"], GOLDEN_SEQUENCE["calls"], strict=True)
    ):
        assert call == expected, f"call {index} of the sequence differs from the official one"
    assert ours["next_draws_sha256"] == GOLDEN_SEQUENCE["next_draws_sha256"]


def test_the_golden_sequence_mixes_every_kind_of_call():
    # Guards the fixture: a regenerated sequence must still hold the random ship-or-not draw
    # (with both outcomes), forced ships and a forced empty image.
    kinds = [call["kwargs"].get("has_spaceship") for call in GOLDEN_SEQUENCE["calls"]]
    assert set(kinds) == {None, True, False}
    nan_label = digest_sample(np.zeros((200, 200)), np.full(5, np.nan))["label_sha256"]
    drawn = [
        call["label_sha256"] != nan_label
        for call, kind in zip(GOLDEN_SEQUENCE["calls"], kinds, strict=True)
        if kind is None
    ]
    assert True in drawn and False in drawn


def test_the_golden_sequence_was_computed_from_the_official_generator():
    if find_problem_statement() is None:
        pytest.skip("the official challenge statement is not beside this checkout")
    official = load_official_helpers()
    assert digest_sequence(official.make_data) == GOLDEN_SEQUENCE


def test_layers_combine_to_the_image_and_share_its_stream():
    np.random.seed(3)
    image, label = make_data(has_spaceship=True)
    np.random.seed(3)
    layers = make_layers(has_spaceship=True)
    np.testing.assert_array_equal(layers.image, image)
    np.testing.assert_array_equal(layers.label, label)
    assert layers.noise.max() < 0.8
    assert np.count_nonzero(layers.ship) > 20
    assert np.count_nonzero(layers.lines) > 100


def test_empty_image_has_nan_label():
    np.random.seed(0)
    image, label = make_data(has_spaceship=False)
    assert image.shape == (200, 200) and image.dtype == np.float64
    assert label.shape == (5,) and np.isnan(label).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"noise_level": 1.5}, "noise_level"),
        ({"noise_level": -0.1}, "noise_level"),
        ({"noise_level": float("nan")}, "noise_level"),
        ({"image_size": 0}, "image_size"),
        ({"image_size": -5}, "image_size"),
        ({"image_size": 150}, "image_size"),
        ({"no_lines": -1}, "no_lines"),
        ({"no_lines": 2.5}, "no_lines"),
        ({"has_spaceship": "yes"}, "has_spaceship"),
    ],
)
def test_make_data_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_data(**kwargs)


def test_batch_shapes_dtypes_and_label_ranges():
    images, labels = generate_batch(2000, np.random.default_rng(0))
    assert images.shape == (2000, 200, 200) and images.dtype == np.float32
    assert labels.shape == (2000, 5) and labels.dtype == np.float32
    assert 0 <= images.min() and images.max() <= 1
    has_ship = ~np.isnan(labels).any(axis=1)
    assert 0.77 < has_ship.mean() < 0.83  # p = 0.8, n = 2000: 4 standard deviations
    ships = labels[has_ship]
    assert ships[:, :2].min() >= EDGE_MARGIN and ships[:, :2].max() < 200 - EDGE_MARGIN
    assert np.all(ships[:, :2] == np.round(ships[:, :2]))
    assert 0 <= ships[:, 2].min() and ships[:, 2].max() < 2 * np.pi
    assert SIZE_RANGE[0] <= ships[:, 3].min() and ships[:, 3].max() < SIZE_RANGE[1]
    assert np.all(ships[:, 4] > 0)


def test_batch_matches_the_faithful_generator_in_distribution():
    rng = np.random.default_rng(1)
    images, labels = generate_batch(3000, rng, ship_probability=1.0)
    np.random.seed(1)
    faithful = np.array([make_data(has_spaceship=True)[1] for _ in range(3000)])
    # Same length-to-width distribution (height / width) and pixel statistics.
    ratio_fast = labels[:, 4] / labels[:, 3]
    ratio_faithful = faithful[:, 4] / faithful[:, 3]
    assert abs(ratio_fast.mean() - ratio_faithful.mean()) < 0.02
    np.random.seed(2)
    faithful_images = np.array([make_data(has_spaceship=True)[0] for _ in range(200)])
    bright_fast = (images[:200] >= 0.8).mean()
    bright_faithful = (faithful_images >= 0.8).mean()
    assert abs(bright_fast - bright_faithful) < 0.1 * bright_faithful


def test_batch_draws_the_ship_outline_where_the_label_says():
    images, labels = generate_batch(
        50, np.random.default_rng(4), ship_probability=1.0, noise_level=0.0, no_lines=0
    )
    for image, (x, y, _, width, height) in zip(images, labels, strict=True):
        rows, cols = np.nonzero(image)
        radius = np.hypot(cols - x, rows - y)
        assert radius.max() <= np.hypot(width, height) / 2 + 1.5


def test_batch_is_reproducible_and_seeds_differ():
    a = generate_batch(4, np.random.default_rng(5))
    b = generate_batch(4, np.random.default_rng(5))
    c = generate_batch(4, np.random.default_rng(6))
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"ship_probability": 2.0}, "ship_probability"),
        ({"noise_level": -1.0}, "noise_level"),
        ({"image_size": 10}, "image_size"),
        ({"rng": 3}, "rng"),
    ],
)
def test_batch_rejects_bad_arguments(kwargs, message):
    arguments = {"batch_size": 2, "rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(ValueError, match=message):
        generate_batch(arguments.pop("batch_size"), arguments.pop("rng"), **arguments)


def test_the_first_centred_sample_has_its_centre_in_the_box():
    from spaceship_utils.data.generator import first_centred_layers

    np.random.seed(0)  # noqa: NPY002
    layers = first_centred_layers(60, 140)
    assert np.all((layers.label[:2] >= 60) & (layers.label[:2] <= 140))
    for low, high in ((150, 140), (190, 199), (0, 9)):
        with pytest.raises(ValueError, match="no sample would ever qualify"):
            first_centred_layers(low, high)
