"""One Transformer encoder block: self-attention and feed-forward, each with a residual."""

import keras
from keras import ops

from keras_mapping.layers.activations import (gelu_exact, gelu_exact_in_compute_dtype,
                                              gelu_exact_with_derivative, resolve_activation)
from keras_mapping.layers.attention import MultiHeadAttention
from keras_mapping.layers.initializers import clone_initializer
from keras_mapping.layers.normalization import LayerNormalization
from keras_mapping.layers.peft import (LORA_ATTENTION_TARGETS, LORA_TARGETS, BottleneckAdapter,
                                       LowRankUpdate)


@keras.saving.register_keras_serializable(package="keras_mapping")
class TransformerEncoder(keras.layers.Layer):
    """Self-attention, residual, LayerNorm, feed-forward, residual, LayerNorm.

    `norm_first=False` is the post-norm block of the original Transformer and BERT;
    `norm_first=True` normalizes before each sub-layer (pre-norm), which trains more stably
    when deep. The default activation is the exact (erf) GELU that BERT checkpoints were
    trained with; its tanh approximation shifts hidden states by about 1e-3.

    Args:
        intermediate_dim: width of the feed-forward hidden layer.
        num_heads: number of attention heads; must divide the input feature size.
        dropout: dropout rate after each sub-layer (and on attention probabilities unless
            `attention_dropout` is given).
        attention_dropout: dropout rate on the attention probabilities.
        activation: feed-forward activation, a name ("gelu", "relu", ...) or callable.
        layer_norm_epsilon: epsilon of both LayerNorms.
        norm_first: pre-norm instead of post-norm.
        kernel_initializer: initializer of every kernel.
        bias_initializer: initializer of every bias.
        adapter_dim: adds a bottleneck adapter of this width after the attention and after
            the feed-forward sub-layer, before each residual (Houlsby); None adds none.
        lora_rank: adds LoRA updates of this rank to the projections in `lora_targets`.
        lora_alpha: LoRA scale numerator (updates are scaled by `lora_alpha / lora_rank`).
        lora_dropout: dropout rate on the LoRA updates' inputs.
        lora_targets: projections with LoRA updates: attention's "query", "key", "value",
            "attention_output" and the feed-forward's "intermediate" and "output".
        prefix_length: learned key/value prefix positions in the attention (prefix tuning).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, length, hidden_dim)`.
        padding_mask: boolean `(batch, length)`, True for real tokens; taken from the
            inputs' Keras mask when not given.
        attention_mask: boolean `(batch, length, length)`, True where attention is allowed.
        use_causal_mask: block attention to later positions.
        return_attention_scores: also return `(batch, heads, length, length)` weights.
        training: whether dropout is active.

    Example:
    >>> import numpy as np
    >>> encoder = TransformerEncoder(intermediate_dim=32, num_heads=2)
    >>> x = np.random.rand(2, 5, 16).astype("float32")
    >>> mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    >>> tuple(encoder(x, padding_mask=mask).shape)
    (2, 5, 16)
    """

    def __init__(
        self,
        intermediate_dim,
        num_heads,
        dropout=0.0,
        attention_dropout=None,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        norm_first=False,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        adapter_dim=None,
        lora_rank=None,
        lora_alpha=None,
        lora_dropout=0.0,
        lora_targets=LORA_ATTENTION_TARGETS,
        prefix_length=None,
        **kwargs,
    ):
        unknown = set(lora_targets) - set(LORA_TARGETS)
        if unknown:
            raise ValueError(f"`lora_targets` must be among {LORA_TARGETS}, got "
                             f"{sorted(unknown)}.")
        super().__init__(**kwargs)
        self.intermediate_dim = intermediate_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.attention_dropout = dropout if attention_dropout is None else attention_dropout
        # "gelu" is the exact GELU; ours computes it about 3x faster than Keras' (see there).
        self.activation = resolve_activation(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.norm_first = norm_first
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.adapter_dim = adapter_dim
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.lora_targets = tuple(lora_targets)
        self.prefix_length = prefix_length
        self.supports_masking = True

    def _dense(self, units, name):
        return keras.layers.Dense(
            units,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def _layer_norm(self, name):
        return LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name)

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        if hidden_dim % self.num_heads:
            raise ValueError(
                f"{self.name}: the input feature size {hidden_dim} is not divisible by "
                f"`num_heads={self.num_heads}`.")
        self.attention_layer = MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=hidden_dim // self.num_heads,
            dropout=self.attention_dropout,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            lora_rank=self.lora_rank,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            lora_targets=[t for t in self.lora_targets if t in LORA_ATTENTION_TARGETS],
            prefix_length=self.prefix_length,
            dtype=self.dtype_policy,
            name="attention",
        )
        self.attention_layer.build(inputs_shape, inputs_shape)
        self.attention_layer_norm = self._layer_norm("attention_layer_norm")
        self.attention_layer_norm.build(inputs_shape)
        # The activation is applied in `call`, after any LoRA update of this projection.
        self.intermediate_dense = self._dense(self.intermediate_dim, "intermediate_dense")
        self.intermediate_dense.build(inputs_shape)
        intermediate_shape = tuple(inputs_shape[:-1]) + (self.intermediate_dim,)
        self.output_dense = self._dense(hidden_dim, "output_dense")
        self.output_dense.build(intermediate_shape)
        self.output_layer_norm = self._layer_norm("output_layer_norm")
        self.output_layer_norm.build(inputs_shape)
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.feedforward_lora = {}
        for target, input_shape, units in (("intermediate", inputs_shape, self.intermediate_dim),
                                           ("output", intermediate_shape, hidden_dim)):
            if self.lora_rank is not None and target in self.lora_targets:
                update = LowRankUpdate(self.lora_rank, (units,), alpha=self.lora_alpha,
                                       dropout=self.lora_dropout, dtype=self.dtype_policy,
                                       name=f"{target}_lora")
                update.build(input_shape)
                self.feedforward_lora[target] = update
        self.attention_adapter = self.feedforward_adapter = None
        if self.adapter_dim is not None:
            self.attention_adapter = BottleneckAdapter(
                self.adapter_dim, dtype=self.dtype_policy, name="attention_adapter")
            self.attention_adapter.build(inputs_shape)
            self.feedforward_adapter = BottleneckAdapter(
                self.adapter_dim, dtype=self.dtype_policy, name="feedforward_adapter")
            self.feedforward_adapter.build(inputs_shape)
        self.built = True

    def _feedforward_projection(self, target, projection, inputs, training):
        outputs = projection(inputs)
        if target in self.feedforward_lora:
            outputs = outputs + self.feedforward_lora[target](inputs, training=training)
        return outputs

    def _sublayer_output(self, residual, x, adapter, training):
        x = self.dropout_layer(x, training=training)
        if adapter is not None:
            x = adapter(x)
        return residual + x

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=None,
        mask=None,
    ):
        if padding_mask is None:
            padding_mask = mask
        if padding_mask is not None:
            key_mask = ops.expand_dims(ops.cast(padding_mask, "bool"), 1)  # (batch, 1, length)
            attention_mask = key_mask if attention_mask is None else ops.logical_and(
                ops.cast(attention_mask, "bool"), key_mask)

        residual = inputs
        x = self.attention_layer_norm(inputs) if self.norm_first else inputs
        attended = self.attention_layer(
            x, x, attention_mask=attention_mask, use_causal_mask=use_causal_mask,
            return_attention_scores=return_attention_scores, training=training)
        x, scores = attended if return_attention_scores else (attended, None)
        x = self._sublayer_output(residual, x, self.attention_adapter, training)
        if not self.norm_first:
            x = self.attention_layer_norm(x)

        x = self._feedforward(x, training)
        if return_attention_scores:
            return x, scores
        return x

    def _feedforward(self, inputs, training):
        """The feed-forward sub-layer with its residual and LayerNorm, over token rows.

        Flattening `(batch, length, width)` into rows makes both projections plain 2-D
        matmuls, which TensorFlow's oneDNN remapper fuses with what follows them: the
        intermediate one with its bias and GELU, the output one with its bias and, in
        inference, the residual add. Dense on 3-D inputs runs as `Tensordot`, whose reshape
        between the matmul and the bias left every one of those ops separate: 12% of bf16
        inference at 32 x 128 (BENCHMARKS.md, "Where the time goes").
        """
        shape = ops.shape(inputs)
        x = residual = ops.reshape(inputs, (-1, inputs.shape[-1]))
        if self.norm_first:
            x = self.output_layer_norm(x)
        x = self._feedforward_activation(training)(self._feedforward_projection(
            "intermediate", self.intermediate_dense, x, training))
        x = self._feedforward_projection("output", self.output_dense, x, training)
        x = self._sublayer_output(residual, x, self.feedforward_adapter, training)
        if not self.norm_first:
            x = self.output_layer_norm(x)
        return ops.reshape(x, shape)

    def _feedforward_activation(self, training):
        """The activation, with the exact GELU in the form that suits the call: a cheaper
        gradient in training, and in inference the formula in the input's own dtype, which
        oneDNN folds into the matmul before it (only when that matmul's output goes straight
        into it: no LoRA update or quantized kernel in between)."""
        if self.activation is not gelu_exact:
            return self.activation
        if training:
            return gelu_exact_with_derivative
        fusable = ("intermediate" not in self.feedforward_lora
                   and self.intermediate_dense.quantization_mode is None)
        return gelu_exact_in_compute_dtype if fusable else gelu_exact

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "intermediate_dim": self.intermediate_dim,
                "num_heads": self.num_heads,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "activation": keras.activations.serialize(self.activation),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "norm_first": self.norm_first,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "adapter_dim": self.adapter_dim,
                "lora_rank": self.lora_rank,
                "lora_alpha": self.lora_alpha,
                "lora_dropout": self.lora_dropout,
                "lora_targets": self.lora_targets,
                "prefix_length": self.prefix_length,
            }
        )
        return config
