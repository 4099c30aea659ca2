"""Predicting the original tokens at masked positions, with the decoder tied to the input
embeddings."""

import keras
from keras import ops

from keras_mapping.layers.initializers import clone_initializer
from keras_mapping.layers.normalization import LayerNormalization


@keras.saving.register_keras_serializable(package="keras_mapping")
class MaskedLMHead(keras.layers.Layer):
    """BERT's masked-LM head: gather, dense + activation, LayerNorm, tied decoder, bias.

    Only the `mask_positions` are decoded, so the vocabulary-sized matmul costs
    `num_masked x vocabulary_size` instead of `length x vocabulary_size`.

    Args:
        vocabulary_size: number of output classes (token ids).
        token_embedding: a `keras.layers.Embedding` whose table (transposed) is the decoder.
            Not serialized: the owning model passes its own embedding when rebuilt. Without
            it the layer creates its own (untied) decoder kernel.
        activation: activation of the transform dense layer.
        layer_norm_epsilon: LayerNorm epsilon.
        kernel_initializer: initializer of the transform (and untied decoder) kernel.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, length, hidden_dim)` encoder outputs.
        mask_positions: int `(batch, num_masked)` positions to predict.

    Example:
    >>> import numpy as np
    >>> head = MaskedLMHead(vocabulary_size=50)
    >>> logits = head(np.random.rand(2, 6, 8).astype("float32"), np.array([[1, 4], [0, 2]]))
    >>> tuple(logits.shape)
    (2, 2, 50)
    """

    def __init__(
        self,
        vocabulary_size,
        token_embedding=None,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.token_embedding = token_embedding
        self.activation = keras.activations.get(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        if token_embedding is not None and token_embedding.input_dim != vocabulary_size:
            raise ValueError(
                f"`vocabulary_size={vocabulary_size}` does not match the tied embedding's "
                f"{token_embedding.input_dim} rows.")

    def build(self, inputs_shape, mask_positions_shape=None):
        hidden_dim = inputs_shape[-1]
        self.transform_dense = keras.layers.Dense(
            hidden_dim, activation=self.activation,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy, name="transform_dense")
        self.transform_dense.build((None, None, hidden_dim))
        self.layer_norm = LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm")
        self.layer_norm.build((None, None, hidden_dim))
        self.decoder_kernel = None
        if self.token_embedding is None:
            self.decoder_kernel = self.add_weight(
                name="decoder_kernel", shape=(hidden_dim, self.vocabulary_size),
                initializer=clone_initializer(self.kernel_initializer))
        self.output_bias = self.add_weight(
            name="output_bias", shape=(self.vocabulary_size,), initializer="zeros")
        self.built = True

    def call(self, inputs, mask_positions):
        positions = ops.expand_dims(ops.cast(mask_positions, "int32"), -1)
        gathered = ops.take_along_axis(inputs, positions, axis=1)
        x = self.layer_norm(self.transform_dense(gathered))
        if self.decoder_kernel is not None:
            kernel = self.decoder_kernel
        else:
            kernel = ops.transpose(self.token_embedding.embeddings)
        logits = ops.matmul(x, ops.cast(kernel, x.dtype))
        return logits + ops.cast(self.output_bias, logits.dtype)

    def compute_output_shape(self, inputs_shape, mask_positions_shape):
        return tuple(mask_positions_shape) + (self.vocabulary_size,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "activation": keras.activations.serialize(self.activation),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
