"""BERT's input embedding: tokens + positions (+ segments), then LayerNorm and dropout."""

import keras
from keras import ops

from keras_mapping.layers.initializers import clone_initializer
from keras_mapping.layers.normalization import LayerNormalization
from keras_mapping.layers.position import PositionEmbedding


@keras.saving.register_keras_serializable(package="keras_mapping")
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Sums token, learned position and optional segment embeddings, as BERT does.

    The sum goes through LayerNorm and dropout. With `mask_zero=True`, id 0 is padding: the
    layer emits a Keras mask (True = real token) that downstream layers such as
    `TransformerEncoder` pick up.

    Args:
        vocabulary_size: number of token ids.
        sequence_length: largest number of positions.
        embedding_dim: output feature size.
        num_segments: number of segment (token type) ids; 0 disables segment embeddings.
        layer_norm_epsilon: epsilon of the LayerNorm over the sum; None skips the LayerNorm.
        dropout: dropout rate after the LayerNorm.
        mask_zero: treat token id 0 as padding and emit a mask.
        embeddings_initializer: initializer of all three tables.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        token_ids: int `(batch, length)`.
        segment_ids: int `(batch, length)`; None means segment 0 everywhere.
        training: whether dropout is active.

    Example:
    >>> import numpy as np
    >>> embed = TokenAndPositionEmbedding(100, 16, 8, num_segments=2, mask_zero=True)
    >>> ids = np.array([[5, 6, 0]])
    >>> tuple(embed(ids, np.zeros_like(ids)).shape)
    (1, 3, 8)
    >>> np.asarray(embed.compute_mask(ids)).tolist()
    [[True, True, False]]
    """

    def __init__(
        self,
        vocabulary_size,
        sequence_length,
        embedding_dim,
        num_segments=0,
        layer_norm_epsilon=1e-12,
        dropout=0.0,
        mask_zero=False,
        embeddings_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.embedding_dim = embedding_dim
        self.num_segments = num_segments
        self.layer_norm_epsilon = layer_norm_epsilon
        self.dropout = dropout
        self.mask_zero = mask_zero
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.supports_masking = mask_zero

        self.token_embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim,
            embeddings_initializer=clone_initializer(self.embeddings_initializer),
            dtype=self.dtype_policy, name="token_embedding")
        self.position_embedding = PositionEmbedding(
            sequence_length, initializer=clone_initializer(self.embeddings_initializer),
            dtype=self.dtype_policy, name="position_embedding")
        self.segment_embedding = None
        if num_segments:
            self.segment_embedding = keras.layers.Embedding(
                num_segments, embedding_dim,
                embeddings_initializer=clone_initializer(self.embeddings_initializer),
                dtype=self.dtype_policy, name="segment_embedding")
        self.layer_norm = None
        if layer_norm_epsilon is not None:
            self.layer_norm = LayerNormalization(
                epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm")
        self.dropout_layer = keras.layers.Dropout(
            dropout, dtype=self.dtype_policy, name="dropout")

    def build(self, token_ids_shape, segment_ids_shape=None):
        self.token_embedding.build(token_ids_shape)
        embedded_shape = tuple(token_ids_shape) + (self.embedding_dim,)
        self.position_embedding.build(embedded_shape)
        if self.segment_embedding is not None:
            self.segment_embedding.build(token_ids_shape)
        if self.layer_norm is not None:
            self.layer_norm.build(embedded_shape)
        self.built = True

    def call(self, token_ids, segment_ids=None, training=None):
        embedded = self.token_embedding(token_ids)
        embedded = embedded + self.position_embedding(embedded)
        if self.segment_embedding is not None:
            if segment_ids is None:
                segment_ids = ops.zeros_like(token_ids)
            embedded = embedded + self.segment_embedding(segment_ids)
        if self.layer_norm is not None:
            embedded = self.layer_norm(embedded)
        return self.dropout_layer(embedded, training=training)

    def compute_mask(self, token_ids, previous_mask=None):
        if not self.mask_zero:
            return None
        return ops.not_equal(token_ids, 0)

    def compute_output_shape(self, token_ids_shape, segment_ids_shape=None):
        return tuple(token_ids_shape) + (self.embedding_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "sequence_length": self.sequence_length,
                "embedding_dim": self.embedding_dim,
                "num_segments": self.num_segments,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "dropout": self.dropout,
                "mask_zero": self.mask_zero,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer),
            }
        )
        return config
