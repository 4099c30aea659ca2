"""Pooling a sequence into one vector per example, ignoring padding."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_mapping")
class MaskedMeanPooling(keras.layers.Layer):
    """Mean of the vectors at real (unpadded) positions, optionally L2-normalized.

    This is the sentence embedding of sentence-transformers models such as all-MiniLM-L6-v2.

    Args:
        normalize: divide each mean by its L2 norm.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, length, dim)`.
        padding_mask: boolean `(batch, length)`, True at real positions; taken from the
            inputs' Keras mask when not given, and all True when neither exists.

    Example:
    >>> import numpy as np
    >>> x = np.array([[[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]]], "float32")
    >>> pooled = MaskedMeanPooling(normalize=False)(x, np.array([[True, True, False]]))
    >>> np.asarray(pooled).tolist()
    [[2.0, 0.0]]
    """

    def __init__(self, normalize=True, **kwargs):
        super().__init__(**kwargs)
        self.normalize = normalize
        self.supports_masking = True

    def call(self, inputs, padding_mask=None, mask=None):
        if padding_mask is None:
            padding_mask = mask
        if padding_mask is None:
            pooled = ops.mean(inputs, axis=1)
        else:
            weights = ops.expand_dims(ops.cast(padding_mask, inputs.dtype), -1)
            total = ops.sum(inputs * weights, axis=1)
            # max(count, 1) keeps an all-padding row at zero instead of NaN.
            pooled = total / ops.maximum(ops.sum(weights, axis=1), 1.0)
        if self.normalize:
            norm = ops.sqrt(ops.sum(ops.square(pooled), axis=-1, keepdims=True))
            pooled = pooled / ops.maximum(norm, 1e-12)
        return pooled

    def compute_mask(self, inputs, previous_mask=None):
        return None

    def compute_output_shape(self, inputs_shape):
        return (inputs_shape[0], inputs_shape[-1])

    def get_config(self):
        config = super().get_config()
        config["normalize"] = self.normalize
        return config
