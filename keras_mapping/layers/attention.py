"""Multi-head attention that really splits heads and really honours masks."""

import keras
from keras import ops

from keras_mapping.layers.initializers import clone_initializer
from keras_mapping.layers.peft import LORA_ATTENTION_TARGETS, AttentionPrefix, LowRankUpdate
from keras_mapping.layers.tensorflow_kernels import attention_as_onednn_fuses_it, onednn_enabled


# TensorFlow has no fused attention kernel: its `ops.dot_product_attention` is the same two
# einsums and float32 softmax plus a scaling pass over the float32 logits, and ran bf16
# prediction at 128 tokens 5-7% slower than the explicit path below. Other backends may
# dispatch it to fused kernels (cuDNN, flash attention).
FUSED_ATTENTION = keras.backend.backend() != "tensorflow"
# oneDNN's softmax of bfloat16 logits accumulates in float32 and rounds once: its output
# equals a float32 softmax cast back to bfloat16 (max difference 0.0 at 32 x 12 x 128 x 128),
# without the two casts around it (a quarter of the attention core's time). Inference only:
# its gradient (TensorFlow's, written with a bfloat16 sum) would not be. Elsewhere a
# bfloat16 softmax may sum in bfloat16, so the logits go to float32 first.
SOFTMAX_OF_BFLOAT16_IN_FLOAT32 = onednn_enabled()
# In inference with oneDNN, the scale and the mask go into the first matmul as post-ops
# (`tensorflow_kernels.attention_as_onednn_fuses_it`): the attention core of `minilm_l6` at
# 32 x 128 in bf16 took 4.4 instead of 7.1-7.3 ms per layer on an AMX Xeon. Training keeps
# the path below (dropout, and gradients that read the intermediates).
ONEDNN_FUSES_ATTENTION_LOGITS = onednn_enabled()


@keras.saving.register_keras_serializable(package="keras_mapping")
class MultiHeadAttention(keras.layers.Layer):
    """Scaled dot-product attention over `num_heads` learned projections.

    Same call semantics and weight layout as `keras.layers.MultiHeadAttention` (weights can be
    copied between the two with `set_weights`), with one deliberate difference: a query row
    that may attend to no key at all (a padded query, or every key padded) gets a zero context
    vector instead of an average over padding, on every code path, so its output is finite and
    does not depend on padded values.

    On backends other than TensorFlow, `ops.dot_product_attention` (which may run a fused
    kernel) is used whenever neither attention-probability dropout nor the attention scores
    are needed.

    Args:
        num_heads: number of attention heads.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value; defaults to `key_dim`.
        dropout: dropout rate on the attention probabilities.
        use_bias: whether the projections have biases.
        output_dim: size of the output features; defaults to the query's last dimension.
        kernel_initializer: initializer for the projection kernels.
        bias_initializer: initializer for the projection biases.
        seed: seed for the dropout layer.
        lora_rank: adds a LoRA update of this rank to each projection in `lora_targets`
            (see `keras_mapping.layers.peft.LowRankUpdate`); None adds none.
        lora_alpha: LoRA scale numerator (the update is scaled by `lora_alpha / lora_rank`).
        lora_dropout: dropout rate on the LoRA updates' inputs.
        lora_targets: projections that get LoRA updates, among "query", "key", "value"
            and "attention_output".
        prefix_length: prepends this many learned key/value positions that every query
            attends to (prefix tuning); None adds none. The returned attention scores then
            have `prefix_length` more source columns, first.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        query: `(batch, target_length, dim)`.
        value: `(batch, source_length, dim)`.
        key: `(batch, source_length, dim)`; defaults to `value`.
        attention_mask: boolean `(batch, target_length, source_length)` (or broadcastable),
            True where a query may attend to a key.
        use_causal_mask: additionally block attention to later positions.
        return_attention_scores: also return the `(batch, heads, target, source)` weights.
        training: whether dropout is active.

    Example:
    >>> import numpy as np
    >>> attention = MultiHeadAttention(num_heads=2, key_dim=8)
    >>> x = np.random.rand(3, 5, 16).astype("float32")
    >>> output, scores = attention(x, x, return_attention_scores=True)
    >>> tuple(output.shape), tuple(scores.shape)
    ((3, 5, 16), (3, 2, 5, 5))
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_dim=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        seed=None,
        lora_rank=None,
        lora_alpha=None,
        lora_dropout=0.0,
        lora_targets=LORA_ATTENTION_TARGETS,
        prefix_length=None,
        **kwargs,
    ):
        for name, value in (("num_heads", num_heads), ("key_dim", key_dim)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {dropout!r}.")
        super().__init__(**kwargs)
        self.supports_masking = True
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim or key_dim
        self.dropout = dropout
        self.use_bias = use_bias
        self.output_dim = output_dim
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.seed = seed
        unknown = set(lora_targets) - set(LORA_ATTENTION_TARGETS)
        if unknown:
            raise ValueError(f"`lora_targets` of attention must be among "
                             f"{LORA_ATTENTION_TARGETS}, got {sorted(unknown)}.")
        if prefix_length is not None and self.value_dim != key_dim:
            raise ValueError("`prefix_length` needs `value_dim` equal to `key_dim`.")
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.lora_targets = tuple(lora_targets)
        self.prefix_length = prefix_length
        self._inverse_sqrt_key_dim = 1.0 / float(key_dim) ** 0.5

    def _projection(self, equation, output_shape, bias_axes, name):
        return keras.layers.EinsumDense(
            equation,
            output_shape=output_shape,
            bias_axes=bias_axes if self.use_bias else None,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        heads = self.num_heads
        self.query_dense = self._projection(
            "abc,cde->abde", (None, heads, self.key_dim), "de", "query")
        self.key_dense = self._projection(
            "abc,cde->abde", (None, heads, self.key_dim), "de", "key")
        self.value_dense = self._projection(
            "abc,cde->abde", (None, heads, self.value_dim), "de", "value")
        output_dim = self.output_dim or query_shape[-1]
        self.output_dense = self._projection(
            "abcd,cde->abe", (None, output_dim), "e", "attention_output")
        self.query_dense.build(query_shape)
        self.key_dense.build(key_shape)
        self.value_dense.build(value_shape)
        self.output_dense.build((query_shape[0], query_shape[1], heads, self.value_dim))
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, seed=self.seed, dtype=self.dtype_policy)
        self.lora_updates = {}
        if self.lora_rank is not None:
            shapes = {"query": (query_shape, (heads, self.key_dim), 1),
                      "key": (key_shape, (heads, self.key_dim), 1),
                      "value": (value_shape, (heads, self.value_dim), 1),
                      "attention_output": ((query_shape[0], query_shape[1], heads,
                                            self.value_dim), (output_dim,), 2)}
            for target in self.lora_targets:
                input_shape, output_shape, input_axes = shapes[target]
                update = LowRankUpdate(
                    self.lora_rank, output_shape, alpha=self.lora_alpha,
                    dropout=self.lora_dropout, input_axes=input_axes,
                    dtype=self.dtype_policy, name=f"{target}_lora")
                update.build(input_shape)
                self.lora_updates[target] = update
        self.prefix = None
        if self.prefix_length is not None:
            self.prefix = AttentionPrefix(self.prefix_length, heads, self.key_dim,
                                          dtype=self.dtype_policy, name="prefix")
            self.prefix.build()
        self.built = True

    def _project(self, target, projection, inputs, training):
        input_axes = 2 if target == "attention_output" else 1  # (heads, head_dim) in, or one
        outputs = dense_as_matmul(projection, inputs, input_axes)
        if target in self.lora_updates:
            outputs = outputs + self.lora_updates[target](inputs, training=training)
        return outputs

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=None,
    ):
        if key is None:
            key = value
            key_mask = None  # the value's mask already covers the shared key
        mask = self.compute_attention_mask(
            query, value, query_mask, value_mask, key_mask, attention_mask, use_causal_mask)
        query = self._project("query", self.query_dense, query, training)
        key = self._project("key", self.key_dense, key, training)
        value = self._project("value", self.value_dense, value, training)
        if self.prefix is not None:
            key, value, mask = self.prefix(key, value, mask)
        context, scores = self.attend(
            query, key, value, mask, training=training,
            return_attention_scores=return_attention_scores)
        output = self._project("attention_output", self.output_dense, context, training)
        if return_attention_scores:
            return output, scores
        return output

    def attend(self, query, key, value, mask=None, training=None, return_attention_scores=False):
        """Attention over projected `(batch, length, heads, head_dim)` tensors.

        `mask` is boolean and broadcastable to `(batch, target_length, source_length)`.
        Returns the `(batch, target_length, heads, value_dim)` context and, when asked, the
        `(batch, heads, target_length, source_length)` attention probabilities.
        """
        if mask is not None:
            mask = ops.expand_dims(mask, axis=1)  # broadcast over heads
        fused = (FUSED_ATTENTION and not return_attention_scores
                 and not (self.dropout > 0.0 and training))
        probabilities = None
        if (ONEDNN_FUSES_ATTENTION_LOGITS and not training and not return_attention_scores
                and query.dtype in ("float32", "bfloat16")):  # float16 keeps a float32 softmax
            context = attention_as_onednn_fuses_it(
                query, key, value, mask, self._inverse_sqrt_key_dim)
        elif fused:
            context = ops.dot_product_attention(
                query, key, value, mask=mask, scale=self._inverse_sqrt_key_dim)
        else:
            query = ops.multiply(query, ops.cast(self._inverse_sqrt_key_dim, query.dtype))
            logits = ops.einsum("bthd,bshd->bhts", query, key)
            if training or not (SOFTMAX_OF_BFLOAT16_IN_FLOAT32 and logits.dtype == "bfloat16"):
                logits = ops.cast(logits, "float32")  # softmax in full precision under bf16
            if mask is not None:
                logits = ops.where(mask, logits, ops.cast(-1e9, logits.dtype))
            probabilities = ops.softmax(logits, axis=-1)
            if mask is not None and return_attention_scores:
                probabilities = ops.where(mask, probabilities, ops.zeros_like(probabilities))
            probabilities = ops.cast(probabilities, value.dtype)
            dropped = self.dropout_layer(probabilities, training=training)
            context = ops.einsum("bhts,bshd->bthd", dropped, value)
        if mask is not None:
            # A row that sees no key gets softmax's uniform average over padding: zero it
            # here, on the context, which is half the size of the probabilities at
            # 12 heads of 32 and 64 positions.
            has_key = ops.any(mask, axis=-1)  # (batch, 1, target_length)
            has_key = ops.expand_dims(ops.transpose(has_key, (0, 2, 1)), -1)
            context = ops.where(has_key, context, ops.zeros_like(context))
        return context, probabilities

    @staticmethod
    def compute_attention_mask(
        query,
        value,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        use_causal_mask=False,
    ):
        """Merges Keras masks, an explicit mask and the causal mask into one boolean mask.

        Returns a mask broadcastable to `(batch, target_length, source_length)`, or None.
        """
        masks = []
        if query_mask is not None:
            masks.append(ops.expand_dims(ops.cast(query_mask, "bool"), -1))
        for source_mask in (value_mask, key_mask):
            if source_mask is not None:
                masks.append(ops.expand_dims(ops.cast(source_mask, "bool"), -2))
        if use_causal_mask:
            target_length, source_length = ops.shape(query)[1], ops.shape(value)[1]
            rows = ops.expand_dims(ops.arange(target_length), -1)
            columns = ops.expand_dims(ops.arange(source_length), 0)
            masks.append(ops.expand_dims(rows >= columns, 0))
        if attention_mask is not None:
            attention_mask = ops.cast(attention_mask, "bool")
            if len(attention_mask.shape) == 2:  # (target, source): same for every example
                attention_mask = ops.expand_dims(attention_mask, 0)
            masks.append(attention_mask)
        if not masks:
            return None
        merged = masks[0]
        for mask in masks[1:]:
            merged = ops.logical_and(merged, mask)
        return merged

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        return tuple(query_shape[:-1]) + (self.output_dim or query_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "value_dim": self.value_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "output_dim": self.output_dim,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "seed": self.seed,
                "lora_rank": self.lora_rank,
                "lora_alpha": self.lora_alpha,
                "lora_dropout": self.lora_dropout,
                "lora_targets": self.lora_targets,
                "prefix_length": self.prefix_length,
            }
        )
        return config



def dense_as_matmul(projection, inputs, input_axes):
    """Applies an `EinsumDense` that contracts the last `input_axes` axes as one 2-D matmul.

    TensorFlow runs the head-splitting (`abc,cde->abde`) and head-merging (`abcd,cde->abe`)
    einsums as broadcast batch matmuls, whose kernel gradient is a product per example
    followed by a sum over the batch: 4% of a bf16 training step at 32 x 64. Flattening the
    leading axes into rows makes both directions plain matmuls. The variables keep their
    `EinsumDense` shapes and names; quantized projections are called as they are.
    """
    if projection.quantization_mode is not None:
        return projection(inputs)
    kernel = projection.kernel  # includes Keras' own LoRA update when one is enabled
    input_width = 1
    for size in kernel.shape[:input_axes]:
        input_width *= size
    leading = tuple(ops.shape(inputs)[: len(inputs.shape) - input_axes])
    rows = ops.reshape(inputs, (-1, input_width))
    outputs = ops.matmul(rows, ops.reshape(ops.cast(kernel, rows.dtype), (input_width, -1)))
    if projection.bias is not None:
        outputs = ops.add(outputs, ops.reshape(ops.cast(projection.bias, rows.dtype), (-1,)))
    return ops.reshape(outputs, leading + tuple(kernel.shape[input_axes:]))
