"""Keras' LayerNormalization and BatchNormalization, run as TensorFlow's fused kernels where
they give the same results faster."""

import math

import keras

from keras_mapping.layers.tensorflow_kernels import (fused_batch_norm,
                                                     layer_norm_as_onednn_fuses_it,
                                                     onednn_enabled)

# Inference only: in training the gradient reads the intermediates, nothing fuses, and the
# batch-norm form is slower than Keras' own (BENCHMARKS.md, "LayerNorm as one kernel").
FUSED_LAYER_NORM = onednn_enabled()
_FUSED_DTYPES = ("float32", "bfloat16")
# The fused kernel costs about 0.2 ms a call whatever its size, Keras' form about 0.06 ms
# plus 0.85 us a row of 384 (float32, 2-core EPYC): below this many rows (one request of a
# few dozen tokens) Keras' form is the faster one.
FUSED_MIN_ROWS = 192


@keras.saving.register_keras_serializable(package="keras_mapping")
class LayerNormalization(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` with the same arguments, weights and float32
    results, and one difference in how it runs: in inference on TensorFlow with oneDNN,
    over the last axis of a rank-2 or rank-3 float32 or bfloat16 input with both `gamma`
    and `beta`, it is written in the form TensorFlow's graph optimizer fuses into a single
    `_MklLayerNorm` kernel (see `tensorflow_kernels.layer_norm_as_onednn_fuses_it`), five
    to six times faster than Keras' eight elementwise passes on a batch; below
    `FUSED_MIN_ROWS` rows, where Keras' form is faster, that one runs. From bfloat16
    inputs, `gamma` and `beta` are then applied in bfloat16 (Keras applies them in
    float32), as every other weight of a mixed precision model is: the results differ by
    that rounding.

    Example:
    >>> import numpy as np
    >>> layer = LayerNormalization(epsilon=1e-12)
    >>> x = np.array([[1.0, 2.0, 3.0, 6.0]], "float32")
    >>> reference = keras.layers.LayerNormalization(epsilon=1e-12)
    >>> bool(np.allclose(layer(x), reference(x), atol=1e-6))
    True
    """

    def call(self, inputs, training=None):
        keras_form = super().call
        if training or not (FUSED_LAYER_NORM and self._fusable(inputs)):
            return keras_form(inputs)

        def fused():
            outputs = layer_norm_as_onednn_fuses_it(inputs, self.gamma, self.beta,
                                                    self.epsilon)
            return keras.ops.cast(outputs, self.compute_dtype)

        if all(size is not None for size in inputs.shape[:-1]):
            rows = math.prod(inputs.shape[:-1])
            return fused() if rows >= FUSED_MIN_ROWS else keras_form(inputs)
        # Unknown at trace time (a serving signature, padded batches): decided per call;
        # a graph's cond costs microseconds, and each branch keeps its own form.
        rows = keras.ops.size(inputs) // inputs.shape[-1]
        return keras.ops.cond(rows >= FUSED_MIN_ROWS, fused, lambda: keras_form(inputs))

    def _fusable(self, inputs):
        rank = len(inputs.shape)
        return (rank in (2, 3) and self.axis in ([-1], [rank - 1])
                and self.gamma is not None and self.beta is not None
                and not self.rms_scaling
                and keras.backend.standardize_dtype(inputs.dtype) in _FUSED_DTYPES)


@keras.saving.register_keras_serializable(package="keras_mapping")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` with the same arguments, weights, results and
    moving-average rule, run on TensorFlow as one fused kernel in training and inference
    (`tensorflow_kernels.fused_batch_norm`) for NHWC inputs normalised over their channels.

    Keras 3 dropped `tf.keras` 2's fused path: its elementwise form made ResNet-20's
    training step twice as slow on the 2-core AMX Xeon (BENCHMARKS.md, "BatchNorm as one
    kernel"). Other inputs, masks, `renorm`, `synchronized` and other backends take Keras'
    form. From bfloat16 inputs the kernel keeps its statistics in float32 as Keras does, but
    applies them without first upcasting every value: results differ by that rounding.

    Example:
    >>> import numpy as np
    >>> layer, reference = BatchNormalization(), keras.layers.BatchNormalization()
    >>> x = np.arange(24, dtype="float32").reshape(2, 2, 2, 3)
    >>> bool(np.allclose(layer(x, training=True), reference(x, training=True), atol=1e-5))
    True
    >>> bool(np.allclose(layer.moving_variance, reference.moving_variance))
    True
    """

    def call(self, inputs, training=None, mask=None):
        if mask is not None or not self._fusable(inputs):
            return super().call(inputs, training=training, mask=mask)
        training = bool(training) and self.trainable
        channels = inputs.shape[-1]
        gamma = self.gamma if self.scale else keras.ops.ones((channels,))
        beta = self.beta if self.center else keras.ops.zeros((channels,))
        outputs, mean, variance = fused_batch_norm(
            inputs, gamma, beta, self.moving_mean, self.moving_variance, self.epsilon,
            training)
        if training:
            keep = self.momentum
            self.moving_mean.assign(self.moving_mean * keep + mean * (1.0 - keep))
            self.moving_variance.assign(self.moving_variance * keep + variance * (1.0 - keep))
        return keras.ops.cast(outputs, self.compute_dtype)

    def _fusable(self, inputs):
        rank = len(inputs.shape)
        return (keras.backend.backend() == "tensorflow" and rank == 4
                and self.axis in (-1, rank - 1) and not self.renorm
                and not self.synchronized
                and keras.backend.standardize_dtype(inputs.dtype) in _FUSED_DTYPES)
