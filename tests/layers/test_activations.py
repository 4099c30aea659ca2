import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_mapping.layers.activations import gelu_exact, gelu_exact_with_derivative

X = np.linspace(-6.0, 6.0, 241).astype("float32")


def _value_and_gradient(function, x):
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = function(x)
    return y, tape.gradient(y, x, output_gradients=tf.ones_like(y))


@pytest.mark.parametrize("function", [gelu_exact, gelu_exact_with_derivative])
def test_matches_keras_exact_gelu_and_its_gradient(function):
    value, gradient = _value_and_gradient(function, X)
    expected_value, expected_gradient = _value_and_gradient(
        lambda x: keras.activations.gelu(x, approximate=False), X)
    np.testing.assert_allclose(value, expected_value, atol=1e-6)
    np.testing.assert_allclose(gradient, expected_gradient, atol=1e-6)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_keeps_half_precision_and_its_accuracy(dtype):
    x = tf.cast(X, dtype)
    value, gradient = _value_and_gradient(gelu_exact_with_derivative, x)
    assert value.dtype == dtype and gradient.dtype == dtype
    exact_value, exact_gradient = _value_and_gradient(
        lambda x: keras.activations.gelu(tf.cast(x, "float32"), approximate=False), x)
    tolerance = 1e-2 if dtype == "bfloat16" else 2e-3
    np.testing.assert_allclose(tf.cast(value, "float32"), exact_value, rtol=tolerance,
                               atol=tolerance)
    np.testing.assert_allclose(tf.cast(gradient, "float32"), exact_gradient, rtol=tolerance,
                               atol=tolerance)


def test_second_derivative_exists():
    x = tf.constant(X)
    with tf.GradientTape() as outer:
        outer.watch(x)
        _, gradient = _value_and_gradient(gelu_exact_with_derivative, x)
    second = outer.gradient(gradient, x)
    expected = np.exp(-0.5 * X**2) / np.sqrt(2 * np.pi) * (2 - X**2)
    np.testing.assert_allclose(second, expected, atol=1e-5)
