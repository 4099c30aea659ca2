"""A GPT-style decoder: the same embedding and encoder layers as BERT, pre-norm, with the
causal mask, so each position sees only itself and what came before."""

import keras

from keras_mapping.layers import LayerNormalization, TokenAndPositionEmbedding, TransformerEncoder
from keras_mapping.layers.initializers import bert_kernel_initializer
from keras_mapping.models.bert import config as bert_config


@keras.saving.register_keras_serializable(package="keras_mapping")
class GPTBackbone(keras.Model):
    """Token and position embeddings, pre-norm causal Transformer blocks, a final LayerNorm.

    Inputs: `{"token_ids": int (batch, length), "padding_mask": bool (batch, length)}` (True
    at real tokens). Output: the sequence of hidden states `(batch, length, hidden_dim)`.

    Args:
        vocabulary_size: number of token ids.
        num_layers: number of Transformer blocks.
        num_heads: attention heads per block.
        hidden_dim: width of the hidden states.
        intermediate_dim: width of the feed-forward layer.
        dropout: dropout rate throughout.
        max_sequence_length: largest number of positions.
        layer_norm_epsilon: LayerNorm epsilon.
        dtype: dtype policy of the layers.
        **kwargs: base `keras.Model` arguments.

    Example:
    >>> import numpy as np
    >>> backbone = GPTBackbone(vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=8,
    ...                        intermediate_dim=16, max_sequence_length=16)
    >>> ids = np.array([[5, 6, 7, 0]])
    >>> tuple(backbone({"token_ids": ids, "padding_mask": ids != 0}).shape)
    (1, 4, 8)
    """

    def __init__(self, vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim,
                 dropout=0.1, max_sequence_length=512, layer_norm_epsilon=1e-5, dtype=None,
                 **kwargs):
        self.embeddings = TokenAndPositionEmbedding(
            vocabulary_size=vocabulary_size, sequence_length=max_sequence_length,
            embedding_dim=hidden_dim, layer_norm_epsilon=None, dropout=dropout,
            embeddings_initializer=bert_kernel_initializer(), dtype=dtype, name="embeddings")
        self.decoder_layers = [
            TransformerEncoder(intermediate_dim=intermediate_dim, num_heads=num_heads,
                               dropout=dropout, layer_norm_epsilon=layer_norm_epsilon,
                               norm_first=True, kernel_initializer=bert_kernel_initializer(),
                               dtype=dtype, name=f"decoder_layer_{index}")
            for index in range(num_layers)
        ]
        self.final_layer_norm = LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="final_layer_norm")

        inputs = {
            "token_ids": keras.Input(shape=(None,), dtype="int32", name="token_ids"),
            "padding_mask": keras.Input(shape=(None,), dtype="bool", name="padding_mask"),
        }
        x = self.embeddings(inputs["token_ids"])
        for layer in self.decoder_layers:
            x = layer(x, padding_mask=inputs["padding_mask"], use_causal_mask=True)
        super().__init__(inputs=inputs, outputs=self.final_layer_norm(x), dtype=dtype,
                         **kwargs)
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.layer_norm_epsilon = layer_norm_epsilon

    @property
    def token_embedding(self):
        """The word-embedding layer, shared with the tied output projection."""
        return self.embeddings.token_embedding

    @classmethod
    def from_architecture(cls, name, **overrides):
        """A randomly initialized decoder with the sizes of a named BERT architecture."""
        sizes = bert_config.architecture(name, **overrides)
        keep = ("vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim",
                "dropout", "max_sequence_length", "dtype")
        return cls(**{key: value for key, value in sizes.items() if key in keep})

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "max_sequence_length": self.max_sequence_length,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
