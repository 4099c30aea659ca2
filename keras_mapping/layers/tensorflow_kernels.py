"""What TensorFlow's CPU kernels do by themselves, for layers that choose a cheaper form of
the same computation when the backend is TensorFlow. The only TensorFlow imports of
`keras_mapping.layers`, made when asked."""

import keras


def onednn_enabled():
    """Whether TensorFlow runs its oneDNN kernels and graph fusions here (x86 builds, unless
    `TF_ENABLE_ONEDNN_OPTS=0`). False on other backends.

    Example:
    >>> isinstance(onednn_enabled(), bool)
    True
    """
    if keras.backend.backend() != "tensorflow":
        return False
    from tensorflow.python.util import _pywrap_util_port  # public API has no such query

    return bool(_pywrap_util_port.IsMklEnabled())


def layer_norm_as_onednn_fuses_it(inputs, gamma, beta, epsilon):
    """LayerNorm over the last axis, written as the graph oneDNN's remapper fuses.

    The remapper replaces exactly this subgraph (the form `tf.keras` 2 used: a training-mode
    `FusedBatchNormV3` over `(1, rows, width, 1)` in NCHW, unit scale and zero offset, then
    `* gamma + beta`) with one `_MklLayerNorm` kernel, when the input has rank 2 or 3 and
    nothing else reads its intermediates (inference: a gradient would). Keras 3's own
    formulation (moments, rsqrt, five elementwise passes) matches none of its patterns.
    Statistics are computed in float32 for bfloat16 inputs; `gamma` and `beta` are applied
    in the inputs' dtype. Unfused (eagerly, or where a gradient needs the intermediates) it
    is the same function, only slower (twice Keras' time), and so is TensorFlow without
    oneDNN, which has no such fusion: layers use it only where oneDNN is on.

    Example:
    >>> import numpy as np
    >>> x = np.array([[1.0, 2.0, 3.0, 6.0]], "float32")
    >>> y = layer_norm_as_onednn_fuses_it(x, np.ones(4, "float32"), np.zeros(4, "float32"),
    ...                                   1e-12)
    >>> np.round(np.asarray(y, "float64"), 3).tolist()  # mean 3, variance 3.5
    [[-1.069, -0.535, 0.0, 1.604]]
    """
    import tensorflow as tf

    inputs = tf.convert_to_tensor(inputs)
    shape = tf.shape(inputs)
    rows = tf.reduce_prod(shape[:-1])
    channels = tf.expand_dims(rows, 0)  # one "channel" per row: its own mean and variance
    # With a static input shape, constant folding would turn the two `Fill`s below into
    # constants, which the pattern does not match (unfused, this form is twice as slow as
    # Keras'); a placeholder's value is never folded.
    channels = tf.raw_ops.PlaceholderWithDefault(input=channels, shape=[1])
    normalized, *_ = tf.raw_ops.FusedBatchNormV3(
        x=tf.reshape(inputs, tf.stack([1, rows, inputs.shape[-1], 1])),
        scale=tf.fill(channels, tf.constant(1.0)),
        offset=tf.fill(channels, tf.constant(0.0)),
        mean=tf.constant([], tf.float32),
        variance=tf.constant([], tf.float32),
        epsilon=epsilon,
        exponential_avg_factor=1.0,
        data_format="NCHW",
        is_training=True,  # normalize by this batch's (this row's) own statistics
    )
    normalized = tf.reshape(normalized, shape)
    return normalized * tf.cast(gamma, inputs.dtype) + tf.cast(beta, inputs.dtype)


def fused_batch_norm(inputs, gamma, beta, mean, variance, epsilon, training):
    """BatchNorm over the channels of NHWC `inputs` as TensorFlow's one `FusedBatchNormV3`
    kernel (oneDNN's where it is on), with its own fused gradient.

    Keras 3 writes BatchNorm as moments and elementwise passes, upcasting bfloat16 inputs to
    float32 and back: on a ResNet-20 training step that is three quarters of the ops' time,
    and its gradient as many passes again; the fused kernel reads bfloat16 as it is and keeps
    its statistics in float32. In inference, TensorFlow's graph optimizer also folds it into
    the convolution before it (what `tf.keras` 2 did by default).

    Args:
        inputs: float32 or bfloat16 `(batch, height, width, channels)`.
        gamma, beta: float32 `(channels,)` scale and offset.
        mean, variance: the moving statistics, used when not `training`.
        epsilon: added to the variance.
        training: normalise by this batch's statistics.

    Returns:
        `(outputs in the inputs' dtype, mean, variance)`: in training the batch's mean and
        its biased variance (what Keras' moving average takes; the kernel returns the
        unbiased one), otherwise `mean` and `variance` as given.

    Example:
    >>> import numpy as np
    >>> x = np.array([1.0, 3.0], "float32").reshape(2, 1, 1, 1)
    >>> y, mean, variance = fused_batch_norm(x, [1.0], [0.0], [0.0], [1.0], 0.0, True)
    >>> np.asarray(y).ravel().tolist(), float(mean[0]), float(variance[0])
    ([-1.0, 1.0], 2.0, 1.0)
    """
    import tensorflow as tf

    inputs = tf.convert_to_tensor(inputs)
    gamma, beta, mean, variance = (tf.cast(value, tf.float32)
                                   for value in (gamma, beta, mean, variance))
    empty = tf.constant([], tf.float32)
    outputs, batch_mean, batch_variance, *_ = tf.raw_ops.FusedBatchNormV3(
        x=inputs, scale=gamma, offset=beta, mean=empty if training else mean,
        variance=empty if training else variance, epsilon=epsilon,
        exponential_avg_factor=1.0, data_format="NHWC", is_training=bool(training))
    if not training:
        return outputs, mean, variance
    # The kernel returns variance * n / max(n - 1, 1) over the n values of each channel.
    values = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], tf.float32)
    return outputs, batch_mean, batch_variance * tf.maximum(values - 1.0, 1.0) / values


def attention_as_onednn_fuses_it(query, key, value, mask, scale):
    """Attention over `(batch, length, heads, head_dim)` tensors in inference, written as the
    graph oneDNN's remapper fuses.

    The remapper turns a `BatchMatMulV2` followed by a multiplication by a scalar and the
    addition of a tensor into one `_MklFusedBatchMatMulV2`: oneDNN's matmul (AMX tiles where
    the CPU has them) with the scale and the additive mask applied to the float32
    accumulator before it is rounded once. Written instead as Keras' einsums with the query
    scaled first and the mask a `where` over the logits, the same work is two more passes
    over the largest tensor. `mask` is boolean and broadcastable to
    `(batch, heads, target_length, source_length)`, or None; a masked position gets -1e9
    added, as the unfused path gives it -1e9, and the softmax stays in the inputs' dtype
    (oneDNN's accumulates in float32). Returns the `(batch, target_length, heads,
    value_dim)` context. Only for inference where oneDNN is on: without the fusion it is
    the same function with more transposes.

    Example:
    >>> import numpy as np
    >>> x = np.ones((1, 2, 1, 4), "float32")
    >>> mask = np.array([[[[True, False]]]])
    >>> context = attention_as_onednn_fuses_it(x, x, np.arange(8.0, dtype="float32")
    ...                                        .reshape(1, 2, 1, 4), mask, 0.5)
    >>> np.asarray(context)[0, :, 0].tolist()  # both queries see only the first position
    [[0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0]]
    """
    import tensorflow as tf

    heads_first = (0, 2, 1, 3)
    query, key, value = (tf.transpose(tf.convert_to_tensor(x), heads_first)
                         for x in (query, key, value))
    logits = tf.matmul(query, key, transpose_b=True) * tf.constant(scale, query.dtype)
    if mask is not None:
        logits = logits + tf.where(mask, tf.constant(0.0, query.dtype),
                                   tf.constant(-1e9, query.dtype))
    context = tf.matmul(tf.nn.softmax(logits, axis=-1), value)
    return tf.transpose(context, heads_first)
