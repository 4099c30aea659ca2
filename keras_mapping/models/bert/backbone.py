"""The BERT encoder network, built with the functional API."""

import keras

from keras_mapping.checkpoints import bert_layout
from keras_mapping.checkpoints.presets import resolve_preset
from keras_mapping.layers import TokenAndPositionEmbedding, TransformerEncoder
from keras_mapping.layers.initializers import bert_kernel_initializer
from keras_mapping.models.bert import config as bert_config


def bert_inputs():
    """The three symbolic inputs every model of the BERT family takes."""
    return {
        "token_ids": keras.Input(shape=(None,), dtype="int32", name="token_ids"),
        "segment_ids": keras.Input(shape=(None,), dtype="int32", name="segment_ids"),
        "padding_mask": keras.Input(shape=(None,), dtype="bool", name="padding_mask"),
    }


@keras.saving.register_keras_serializable(package="keras_mapping")
class BertBackbone(keras.Model):
    """BERT: embeddings, a stack of post-norm Transformer encoders and a tanh pooler.

    Inputs are the dict `{"token_ids", "segment_ids", "padding_mask"}` (`padding_mask` is
    boolean, True for real tokens); outputs are the dict `{"sequence_output": (batch, length,
    hidden_dim), "pooled_output": (batch, hidden_dim)}`, the pooled output being a tanh dense
    layer over the `[CLS]` (first) position.

    Args:
        vocabulary_size: number of token ids.
        num_layers: number of encoder blocks.
        num_heads: attention heads per block.
        hidden_dim: feature size.
        intermediate_dim: feed-forward width.
        dropout: dropout rate throughout.
        max_sequence_length: largest number of positions.
        num_segments: number of segment (token type) ids.
        activation: feed-forward activation (exact GELU by default, as BERT was trained).
        layer_norm_epsilon: LayerNorm epsilon.
        peft: parameter-efficient fine-tuning pieces added to every encoder block, as
            `TransformerEncoder` arguments (`adapter_dim`, `lora_rank`, `lora_alpha`,
            `lora_dropout`, `lora_targets`, `prefix_length`); see
            `keras_mapping.models.peft.peft_options`. None adds none.
        **kwargs: base `keras.Model` arguments (`name`, `dtype`).

    Example:
    >>> import numpy as np
    >>> backbone = BertBackbone.from_architecture("bert_tiny", vocabulary_size=100)
    >>> batch = {
    ...     "token_ids": np.array([[2, 7, 9, 3, 0]]),
    ...     "segment_ids": np.zeros((1, 5), "int32"),
    ...     "padding_mask": np.array([[True, True, True, True, False]]),
    ... }
    >>> outputs = backbone(batch)
    >>> tuple(outputs["sequence_output"].shape), tuple(outputs["pooled_output"].shape)
    ((1, 5, 128), (1, 128))
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        dropout=0.1,
        max_sequence_length=512,
        num_segments=2,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        peft=None,
        dtype=None,
        **kwargs,
    ):
        peft = dict(peft or {})
        self.embeddings = TokenAndPositionEmbedding(
            vocabulary_size=vocabulary_size,
            sequence_length=max_sequence_length,
            embedding_dim=hidden_dim,
            num_segments=num_segments,
            layer_norm_epsilon=layer_norm_epsilon,
            dropout=dropout,
            embeddings_initializer=bert_kernel_initializer(),
            dtype=dtype,
            name="embeddings",
        )
        self.encoder_layers = [
            TransformerEncoder(
                intermediate_dim=intermediate_dim,
                num_heads=num_heads,
                dropout=dropout,
                activation=activation,
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=bert_kernel_initializer(),
                dtype=dtype,
                name=f"encoder_layer_{index}",
                **peft,
            )
            for index in range(num_layers)
        ]
        self.pooler_dense = keras.layers.Dense(
            hidden_dim, activation="tanh", kernel_initializer=bert_kernel_initializer(),
            dtype=dtype, name="pooler_dense")

        inputs = bert_inputs()
        x = self.embeddings(inputs["token_ids"], inputs["segment_ids"])
        for encoder in self.encoder_layers:
            x = encoder(x, padding_mask=inputs["padding_mask"])
        pooled = self.pooler_dense(x[:, 0, :])
        super().__init__(
            inputs=inputs,
            outputs={"sequence_output": x, "pooled_output": pooled},
            dtype=dtype,
            **kwargs,
        )
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.peft = peft

    @property
    def token_embedding(self):
        """The word-embedding layer, shared with tied output heads."""
        return self.embeddings.token_embedding

    def freeze(self, embeddings=False, num_layers=0):
        """Sets which parts train: the embeddings, and the lowest `num_layers` encoder blocks.

        Frozen weights are excluded from `trainable_weights` (and so from
        `model.summary()`'s trainable count and from optimizer updates). Calling it again
        replaces the previous setting, so it also serves gradual unfreezing. Recompile the
        model after changing it.

        Args:
            embeddings: freeze the token, position and segment embeddings and their LayerNorm.
            num_layers: freeze this many encoder blocks, counted from the input side.

        Example:
        >>> backbone = BertBackbone.from_architecture("bert_tiny", vocabulary_size=100)
        >>> backbone.freeze(embeddings=True, num_layers=1)
        >>> [layer.trainable for layer in backbone.encoder_layers]
        [False, True]
        """
        if not 0 <= num_layers <= self.num_layers:
            raise ValueError(
                f"`num_layers` must be between 0 and {self.num_layers}, got {num_layers}.")
        self.embeddings.trainable = not embeddings
        for index, layer in enumerate(self.encoder_layers):
            layer.trainable = index >= num_layers

    def attention_scores(self, inputs):
        """Attention probabilities of every layer, for inspection and plots.

        Args:
            inputs: the backbone's input dict.

        Returns:
            A list with one `(batch, num_heads, length, length)` tensor per encoder layer.
        """
        x = self.embeddings(inputs["token_ids"], inputs["segment_ids"])
        scores = []
        for encoder in self.encoder_layers:
            x, layer_scores = encoder(
                x, padding_mask=inputs["padding_mask"], return_attention_scores=True)
            scores.append(layer_scores)
        return scores

    @classmethod
    def from_preset(cls, preset, load_weights=True, **overrides):
        """A backbone built from a preset's `config.json`, with its pretrained weights.

        Args:
            preset: a preset name (see `keras_mapping.checkpoints.PRESETS`, e.g. "minilm_l6")
                or a directory in the BERT layout (config.json, model.safetensors, vocab.txt).
            load_weights: False builds the architecture with random weights.
            **overrides: constructor arguments to change, e.g. `dropout` or `dtype`.

        Example:
        >>> backbone = BertBackbone.from_preset("minilm_l6")
        >>> backbone.num_layers, backbone.hidden_dim
        (6, 384)
        """
        directory = resolve_preset(preset)
        backbone = cls(**{**bert_layout.read_config(directory), **overrides})
        if load_weights:
            bert_layout.load_weights(backbone, directory / bert_layout.WEIGHTS_FILE)
        return backbone

    def save_to_preset(self, directory, tokenizer=None, overwrite=False):
        """Writes config.json, model.safetensors (and vocab.txt with tokenizer_config.json
        when a tokenizer is given) so `from_preset(directory)` and other BERT tooling load it.

        Args:
            directory: destination folder; written atomically.
            tokenizer: a `keras_mapping.tokenizers.BertTokenizer` to store alongside.
            overwrite: replace an existing directory.
        """
        vocabulary = config = None
        if tokenizer is not None:
            vocabulary = tokenizer.get_vocabulary()
            config = bert_layout.tokenizer_config(tokenizer)
        return bert_layout.save_backbone(self, directory, vocabulary, config, overwrite)

    @classmethod
    def from_architecture(cls, name, **overrides):
        """A randomly initialized backbone of a named architecture (see `ARCHITECTURES`).

        Args:
            name: "bert_tiny", "bert_mini", "bert_small", "bert_medium", "bert_base" or
                "minilm_l6".
            **overrides: constructor arguments to change, e.g. `vocabulary_size`.
        """
        return cls(**bert_config.architecture(name, **overrides))

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
            "num_segments": self.num_segments,
            "activation": self.activation,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "peft": self.peft or None,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
