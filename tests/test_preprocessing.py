import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from spaceship_utils.core.geometry import wrapped_angle_error
from spaceship_utils.core.validation import check_images
from spaceship_utils.data.preprocessing import (
    LABEL_SCALE,
    decode_yaw,
    denormalise_labels,
    encode_yaw,
    normalise_labels,
    threshold_images,
)


def test_threshold_keeps_pixels_at_or_above_it():
    image = np.full((200, 200), 0.5)
    image[0, :3] = [0.79, 0.8, 0.95]
    out = threshold_images(image)
    assert out.dtype == np.float32 and out.shape == (200, 200)
    np.testing.assert_allclose(out[0, :3], [0.0, 0.8, 0.95], rtol=1e-6)
    assert out[1:].max() == 0


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((2, 100, 100)), "shape"),
        (np.full((200, 200), np.nan), "NaN or infinite"),
        (np.array([["a"] * 200] * 200), "real numbers"),
        (np.zeros((2, 3, 200, 200)), "shape"),
    ],
)
def test_images_are_validated(images, message):
    with pytest.raises(ValueError, match=message):
        threshold_images(images)


def test_threshold_must_be_a_fraction():
    with pytest.raises(ValueError, match="threshold"):
        threshold_images(np.zeros((200, 200)), threshold=2)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, (7, 5), elements=st.floats(0, 300, allow_subnormal=False)))
def test_label_scaling_round_trips(labels):
    np.testing.assert_allclose(denormalise_labels(normalise_labels(labels)), labels, rtol=1e-12)


def test_label_scale_maps_the_label_ranges_into_the_unit_interval():
    labels = np.array([[190.0, 10.0, 2 * np.pi - 1e-9, 36.0, 70.0]])
    scaled = normalise_labels(labels)
    assert np.all((scaled >= 0) & (scaled <= 1))
    assert LABEL_SCALE.shape == (5,)


def test_nan_rows_stay_nan():
    assert np.isnan(normalise_labels(np.full(5, np.nan))).all()


@pytest.mark.parametrize("encoding", ["raw", "sincos"])
def test_yaw_codes_round_trip(encoding):
    yaw = np.linspace(0, 2 * np.pi, 50, endpoint=False)
    np.testing.assert_allclose(decode_yaw(encode_yaw(yaw, encoding), encoding), yaw, atol=1e-12)


def test_double_angle_code_forgets_the_nose_direction():
    yaw = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    codes = encode_yaw(yaw, "sincos2")
    np.testing.assert_allclose(codes, encode_yaw(yaw + np.pi, "sincos2"), atol=1e-12)
    error = wrapped_angle_error(decode_yaw(codes, "sincos2"), yaw, period=np.pi)
    assert error.max() < 1e-12


def test_sincos_is_continuous_across_the_wrap():
    near_zero, near_two_pi = encode_yaw(np.array([1e-3, 2 * np.pi - 1e-3]), "sincos")
    assert np.abs(near_zero - near_two_pi).max() < 3e-3
    raw = encode_yaw(np.array([1e-3, 2 * np.pi - 1e-3]), "raw")
    assert abs(raw[0, 0] - raw[1, 0]) > 0.99


def test_wrapped_angle_error():
    np.testing.assert_allclose(
        wrapped_angle_error(np.array([0.1]), np.array([2 * np.pi - 0.1])), [0.2]
    )


def test_unknown_encoding_is_refused():
    with pytest.raises(ValueError, match="encoding"):
        encode_yaw(np.zeros(3), "degrees")
    with pytest.raises(ValueError, match="shape"):
        decode_yaw(np.zeros((3, 1)), "sincos")


def test_single_image_gets_a_batch_axis():
    assert check_images(np.zeros((200, 200))).shape == (1, 200, 200)


def test_has_box_marks_rows_without_nan():
    from spaceship_utils.core.validation import has_box

    rows = np.array([[1.0, 2, 3, 4, 5], [np.nan] * 5, [1.0, np.nan, 3, 4, 5]])
    np.testing.assert_array_equal(has_box(rows), [True, False, False])


def test_raw_yaw_codes_of_the_wrong_shape_are_refused():
    from spaceship_utils.data.preprocessing import decode_yaw

    assert decode_yaw(np.array([[0.25], [0.5]]), "raw").shape == (2,)
    with pytest.raises(ValueError, match=r"shape \(N,\) or \(N, 1\)"):
        decode_yaw(np.zeros((3, 2)), "raw")
