"""Every public entry point either works or raises a ValueError that names the bad argument.

Property tests over shapes, dtypes and value ranges: no other exception type, no silent
meaningless number.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spaceship_utils.core.metrics import ap_at_iou, mean_iou, sample_ious
from spaceship_utils.data.generator import generate_batch, make_data
from spaceship_utils.data.preprocessing import (
    decode_yaw,
    denormalise_labels,
    encode_yaw,
    normalise_labels,
    threshold_images,
)
from spaceship_utils.evaluate import main as evaluate_main
from spaceship_utils.networks.detector_targets import encode_targets
from spaceship_utils.pretrained import load_pretrained

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.uint8, np.bool_])


@pytest.fixture(scope="module")
def baseline():
    return load_pretrained("baseline")


def arrays_of_any_shape_and_range(max_side: int = 6):
    """Arrays of 0-3 axes (sides up to `max_side`), any dtype, values from far out of range."""
    shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=max_side)
    return DTYPES.flatmap(
        lambda dtype: hnp.arrays(
            dtype,
            shapes,
            elements=hnp.from_dtype(np.dtype(dtype), allow_nan=True, allow_infinity=True)
            if np.dtype(dtype).kind == "f"
            else None,
        )
    )


def image_batches():
    """(N, 200, 200) batches of few images with a dtype and a value range that may be wrong."""
    return st.tuples(
        st.integers(0, 2),
        DTYPES,
        st.sampled_from([(0.0, 1.0), (0.0, 255.0), (-1.0, 1.0), (0.5, 1.5), (np.nan, np.nan)]),
    ).map(_make_batch)


def _make_batch(spec):
    count, dtype, (low, high) = spec
    values = np.linspace(low, high, count * 200 * 200).reshape(count, 200, 200)
    with np.errstate(invalid="ignore"):
        return values.astype(dtype)


def _valid_images(images: np.ndarray) -> bool:
    return (
        images.dtype.kind == "f"
        and np.isfinite(images).all()
        and (images.size == 0 or (images.min() >= 0 and images.max() <= 1))
    )


def _raises_value_error_naming(call, name: str):
    with pytest.raises(ValueError) as error:
        call()
    assert name in str(error.value)


@pytest.mark.slow
@PROPERTY
@given(images=image_batches())
def test_predict_works_or_names_the_images(baseline, images):
    if _valid_images(images):
        boxes = baseline.predict(images)
        assert boxes.shape == (len(images), 5)
    else:
        _raises_value_error_naming(lambda: baseline.predict(images), "images")


@pytest.mark.slow
@PROPERTY
@given(images=arrays_of_any_shape_and_range())
def test_predict_refuses_every_wrong_shape(baseline, images):
    _raises_value_error_naming(lambda: baseline.predict(images), "images")


@pytest.mark.slow
def test_an_empty_batch_gives_no_boxes(baseline):
    assert baseline.predict(np.zeros((0, 200, 200))).shape == (0, 5)


@pytest.mark.slow
@pytest.mark.parametrize(
    "images, hint",
    [
        (np.full((1, 200, 200), 200, dtype=np.uint8), "images / 255"),
        (np.full((1, 200, 200), 200.0), "from 200 to 200"),
        (np.full((1, 200, 200), -0.5), "[0, 1]"),
    ],
)
def test_out_of_range_images_say_what_was_expected(baseline, images, hint):
    with pytest.raises(ValueError, match="images must") as error:
        baseline.predict(images)
    assert hint in str(error.value)
    with pytest.raises(ValueError, match="images must"):
        threshold_images(images)


def boxes_like():
    """Label-like arrays: mostly (N, 5), sometimes the wrong width, any values."""
    values = st.floats(allow_nan=True, allow_infinity=True, width=64)
    return st.integers(0, 4).flatmap(
        lambda n: st.sampled_from([(n, 5), (n, 4), (n,), (n, 5, 1)]).flatmap(
            lambda shape: hnp.arrays(np.float64, shape, elements=values)
        )
    )


def _works_or_names(call, names: tuple[str, ...]):
    try:
        return call()
    except ValueError as error:
        assert any(name in str(error) for name in names), str(error)
        return None


@PROPERTY
@given(predictions=boxes_like(), labels=boxes_like())
def test_the_scorer_works_or_names_its_argument(predictions, labels):
    for scorer in (sample_ious, ap_at_iou, mean_iou):
        result = _works_or_names(
            lambda scorer=scorer: scorer(predictions, labels),
            ("predictions", "labels", "same number"),
        )
        if result is not None and scorer is sample_ious:
            scored = result[~np.isnan(result)]
            assert np.all((scored >= 0) & (scored <= 1))


@PROPERTY
@given(labels=boxes_like())
def test_label_encoders_work_or_name_their_argument(labels):
    scaled = _works_or_names(lambda: normalise_labels(labels), ("labels",))
    if scaled is not None:
        # atol: a subnormal value (below 2.2e-308) loses digits when scaled and back
        np.testing.assert_allclose(denormalise_labels(scaled), labels, rtol=1e-12, atol=1e-300)
    targets = _works_or_names(lambda: encode_targets(labels), ("labels",))
    if targets is not None:
        assert np.isfinite(targets).all()


@PROPERTY
@given(yaw=arrays_of_any_shape_and_range(), encoding=st.sampled_from(["raw", "sincos", "x"]))
def test_yaw_codes_work_or_name_their_argument(yaw, encoding):
    codes = _works_or_names(lambda: encode_yaw(yaw, encoding), ("yaw_rad", "encoding"))
    if codes is not None:
        assert np.isfinite(codes).all()
        decoded = decode_yaw(codes, encoding)
        assert np.all((decoded >= 0) & (decoded < 2 * np.pi))


@PROPERTY
@given(
    has_spaceship=st.one_of(st.none(), st.booleans(), st.integers(-1, 2), st.text(max_size=2)),
    noise_level=st.one_of(st.floats(allow_nan=True), st.integers(-2, 2)),
    no_lines=st.one_of(st.integers(-2, 8), st.floats(0, 3)),
    image_size=st.one_of(st.integers(-5, 260), st.floats(199, 201)),
)
def test_make_data_works_or_names_its_argument(has_spaceship, noise_level, no_lines, image_size):
    names = ("has_spaceship", "noise_level", "no_lines", "image_size")
    result = _works_or_names(
        lambda: make_data(has_spaceship, noise_level, no_lines, image_size), names
    )
    if result is not None:
        image, label = result
        assert image.shape == (image_size, image_size) and label.shape == (5,)
        assert np.all((image >= 0) & (image <= 1))


@PROPERTY
@given(
    batch_size=st.one_of(st.integers(-2, 3), st.floats(0, 3), st.booleans()),
    ship_probability=st.one_of(st.floats(-1, 2), st.just(float("nan")), st.text(max_size=1)),
)
def test_generate_batch_works_or_names_its_argument(batch_size, ship_probability):
    result = _works_or_names(
        lambda: generate_batch(
            batch_size, np.random.default_rng(0), ship_probability=ship_probability
        ),
        ("batch_size", "ship_probability"),
    )
    if result is not None:
        assert result[0].shape == (batch_size, 200, 200)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--samples", "0"], "spaceship-evaluate: error: --samples must be at least 1"),
        (["--model", "nope"], "spaceship-evaluate: error: argument --model: invalid choice"),
        (["--seed", "-1"], "spaceship-evaluate: error: --seed must be in [0, 2**32)"),
    ],
)
def test_evaluate_cli_answers_mistakes_in_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        evaluate_main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
