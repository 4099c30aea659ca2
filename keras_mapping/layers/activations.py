"""Activations that BERT-family checkpoints name but Keras does not register by name, and a
faster exact GELU."""

import math

import keras
from keras import ops

SQRT_HALF = 1.0 / math.sqrt(2.0)
INVERSE_SQRT_TWO_PI = 1.0 / math.sqrt(2.0 * math.pi)


@keras.saving.register_keras_serializable(package="keras_mapping")
def gelu_approximate(x):
    """The tanh approximation of GELU (`gelu_new` in BERT-layout configs)."""
    return keras.activations.gelu(x, approximate=True)


@keras.saving.register_keras_serializable(package="keras_mapping")
def gelu_exact(x):
    """The exact GELU, `x / 2 * (1 + erf(x / sqrt(2)))`, computed in float32.

    The same function as `keras.activations.gelu(approximate=False)` (BERT's "gelu", and
    PyTorch's formula). TensorFlow's kernel for that goes through `erfc`, which has no
    vectorized bfloat16 path on CPUs: it took 28% of bf16 inference time. `erf` in float32
    is about 3x faster, in either precision (BENCHMARKS.md, "Throughput"). For training,
    `gelu_exact_with_derivative` is the same function with a cheaper gradient.

    Example:
    >>> import numpy as np
    >>> x = np.linspace(-4, 4, 9).astype("float32")
    >>> bool(np.allclose(gelu_exact(x), keras.activations.gelu(x, approximate=False),
    ...                  atol=1e-6))
    True
    """
    dtype = keras.backend.standardize_dtype(x.dtype)
    x = ops.cast(x, "float32")
    return ops.cast(0.5 * x * (1.0 + ops.erf(x * SQRT_HALF)), dtype)


def gelu_exact_in_compute_dtype(x):
    """`gelu_exact` in the input's own dtype, for inference right after a matmul and bias.

    TensorFlow's oneDNN remapper recognises this formula after a matmul and bias and runs
    all three as one kernel, which applies the GELU in float32 to the float32 accumulator
    before rounding once: under bf16 more precise than `gelu_exact` after a rounded matmul,
    and 30% faster at 4,096 x 384 x 1,536 (16.1 against 23.1 ms). Without that fusion
    a bfloat16 input is rounded after each step, so layers call it only where it fuses.

    Example:
    >>> import numpy as np
    >>> x = np.linspace(-4, 4, 9).astype("float32")
    >>> bool(np.allclose(gelu_exact_in_compute_dtype(x), gelu_exact(x), atol=1e-6))
    True
    """
    return 0.5 * x * (1.0 + ops.erf(x * SQRT_HALF))


@ops.custom_gradient
def gelu_exact_with_derivative(x):
    """`gelu_exact` with its derivative, `cdf(x) + x * pdf(x)`, written out.

    Differentiating the formula op by op took a third longer; in inference, though, the
    custom gradient's boundary keeps TensorFlow from fusing the forward ops (bf16 predict 4%
    slower), so layers use this one only while training.

    Example:
    >>> import numpy as np
    >>> x = np.linspace(-4, 4, 9).astype("float32")
    >>> bool(np.allclose(gelu_exact_with_derivative(x), gelu_exact(x), atol=1e-6))
    True
    """
    dtype = keras.backend.standardize_dtype(x.dtype)
    x = ops.cast(x, "float32")
    cdf = 0.5 * (1.0 + ops.erf(x * SQRT_HALF))

    def grad(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        pdf = ops.exp(-0.5 * ops.square(x)) * INVERSE_SQRT_TWO_PI
        return ops.multiply(upstream, ops.cast(cdf + x * pdf, upstream.dtype))

    return ops.cast(x * cdf, dtype), grad


def resolve_activation(activation):
    """A callable for an activation name, our registered ones included
    ("keras_mapping>gelu_approximate", which checkpoints call "gelu_new"): Keras'
    `activations.get` knows only its own names; "gelu" is BERT's exact GELU.

    Example:
    >>> resolve_activation("keras_mapping>gelu_approximate") is gelu_approximate
    True
    """
    if activation == "gelu":
        return gelu_exact
    if isinstance(activation, str):
        activation = keras.saving.get_registered_object(activation) or activation
    return keras.activations.get(activation)
