"""The pieces parameter-efficient fine-tuning adds to a Transformer block: a low-rank update
of a projection (LoRA), a bottleneck adapter, and learned attention prefixes.

Each piece starts as (or close to) a no-op on the pretrained block, so a model with them
computes what the pretrained model computes before training. Which variables then train is
chosen per method by `keras_mapping.models.peft`.
"""

import math

import keras
from keras import ops

LORA_ATTENTION_TARGETS = ("query", "key", "value", "attention_output")
LORA_FEEDFORWARD_TARGETS = ("intermediate", "output")
LORA_TARGETS = LORA_ATTENTION_TARGETS + LORA_FEEDFORWARD_TARGETS


@keras.saving.register_keras_serializable(package="keras_mapping")
class LowRankUpdate(keras.layers.Layer):
    """LoRA: the trainable low-rank term `(alpha / rank) * dropout(x) A B` added to a frozen
    projection's output (Hu et al., 2021).

    `A` starts random and `B` at zero, so the update starts at exactly zero. The projection
    may be a `Dense` or an `EinsumDense` whose kernel reads the last `input_axes` axes of its
    input and writes `output_shape`: the update sees the flattened input and its result is
    reshaped like the projection's, so `merged_kernel` is the kernel that computes both.

    Args:
        rank: inner dimension of the update, >= 1.
        output_shape: feature shape the projection writes, e.g. `(heads, head_dim)`.
        alpha: scale numerator; the update is multiplied by `alpha / rank`. Defaults to
            `rank` (scale 1).
        dropout: dropout rate on the update's input.
        input_axes: trailing input axes the projection contracts.
        **kwargs: base `keras.layers.Layer` arguments.

    Example:
    >>> import numpy as np
    >>> dense = keras.layers.Dense(6)
    >>> lora = LowRankUpdate(rank=2, output_shape=(6,))
    >>> x = np.random.rand(3, 4).astype("float32")
    >>> bool(np.allclose(dense(x) + lora(x), dense(x)))  # zero until trained
    True
    """

    def __init__(self, rank, output_shape, alpha=None, dropout=0.0, input_axes=1, **kwargs):
        check_positive_int("rank", rank)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`lora_dropout` must be in [0, 1), got {dropout!r}.")
        super().__init__(**kwargs)
        self.rank = rank
        self.output_shape_ = tuple(output_shape)
        self.alpha = float(rank if alpha is None else alpha)
        self.dropout = dropout
        self.input_axes = input_axes
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    def build(self, input_shape):
        input_dim = math.prod(input_shape[-self.input_axes:])
        output_dim = math.prod(self.output_shape_)
        self.lora_a = self.add_weight(
            name="lora_a", shape=(input_dim, self.rank),
            initializer=keras.initializers.HeUniform())
        self.lora_b = self.add_weight(
            name="lora_b", shape=(self.rank, output_dim), initializer="zeros")
        self.built = True

    @property
    def scale(self):
        return self.alpha / self.rank

    def call(self, inputs, training=None):
        leading = ops.shape(inputs)[:-self.input_axes]
        flat = ops.reshape(inputs, (*leading, -1))
        flat = self.dropout_layer(flat, training=training)
        update = ops.matmul(ops.matmul(flat, self.lora_a), self.lora_b)
        update = ops.multiply(update, ops.cast(self.scale, update.dtype))
        return ops.reshape(update, (*leading, *self.output_shape_))

    def merged_kernel(self, kernel):
        """`kernel` plus this update, in the kernel's own shape."""
        delta = ops.matmul(self.lora_a, self.lora_b) * self.scale
        return ops.add(kernel, ops.reshape(ops.cast(delta, kernel.dtype), ops.shape(kernel)))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-self.input_axes]) + self.output_shape_

    def get_config(self):
        config = super().get_config()
        config.update({"rank": self.rank, "output_shape": self.output_shape_,
                       "alpha": self.alpha, "dropout": self.dropout,
                       "input_axes": self.input_axes})
        return config


@keras.saving.register_keras_serializable(package="keras_mapping")
class BottleneckAdapter(keras.layers.Layer):
    """A Houlsby adapter: `x + up(gelu(down(x)))`, with `up` starting at zero so the adapter
    starts as the identity (Houlsby et al., 2019).

    Args:
        bottleneck_dim: width of the bottleneck, >= 1.
        activation: nonlinearity between the projections.
        **kwargs: base `keras.layers.Layer` arguments.

    Example:
    >>> import numpy as np
    >>> adapter = BottleneckAdapter(bottleneck_dim=4)
    >>> x = np.random.rand(2, 3, 8).astype("float32")
    >>> bool(np.allclose(adapter(x), x))
    True
    """

    def __init__(self, bottleneck_dim, activation="gelu", **kwargs):
        check_positive_int("adapter_dim", bottleneck_dim)
        super().__init__(**kwargs)
        self.bottleneck_dim = bottleneck_dim
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        self.down = keras.layers.Dense(
            self.bottleneck_dim, activation=self.activation,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype=self.dtype_policy, name="adapter_down")
        self.down.build(input_shape)
        self.up = keras.layers.Dense(input_shape[-1], kernel_initializer="zeros",
                                     dtype=self.dtype_policy, name="adapter_up")
        self.up.build(tuple(input_shape[:-1]) + (self.bottleneck_dim,))
        self.built = True

    def call(self, inputs):
        return inputs + self.up(self.down(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"bottleneck_dim": self.bottleneck_dim,
                       "activation": keras.activations.serialize(self.activation)})
        return config


@keras.saving.register_keras_serializable(package="keras_mapping")
class AttentionPrefix(keras.layers.Layer):
    """Learned keys and values that every query may attend to, placed before the sequence
    (prefix tuning, Li & Liang, 2021, in its per-layer form).

    Call it on projected `(batch, length, heads, head_dim)` keys and values and the
    `(batch|1, target, source)` attention mask; it returns all three extended by `length`
    positions along the source axis. The mask grows by `length` allowed columns, so the
    prefix is visible from every position and padding stays hidden.

    Args:
        length: number of prefix positions, >= 1.
        num_heads: attention heads.
        head_dim: size of each head.
        **kwargs: base `keras.layers.Layer` arguments.

    Example:
    >>> import numpy as np
    >>> prefix = AttentionPrefix(length=3, num_heads=2, head_dim=4)
    >>> key = value = np.zeros((5, 7, 2, 4), "float32")
    >>> key, value, mask = prefix(key, value, np.ones((5, 1, 7), bool))
    >>> tuple(key.shape), tuple(mask.shape)
    ((5, 10, 2, 4), (5, 1, 10))
    """

    def __init__(self, length, num_heads, head_dim, **kwargs):
        check_positive_int("prefix_length", length)
        super().__init__(**kwargs)
        self.length = length
        self.num_heads = num_heads
        self.head_dim = head_dim

    def build(self, *args):
        shape = (self.length, self.num_heads, self.head_dim)
        initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.prefix_key = self.add_weight(name="prefix_key", shape=shape,
                                          initializer=initializer)
        self.prefix_value = self.add_weight(name="prefix_value", shape=shape,
                                            initializer=initializer)
        self.built = True

    def call(self, key, value, attention_mask=None):
        batch = ops.shape(key)[0]

        def prepend(prefix, states):
            prefix = ops.cast(prefix, states.dtype)
            prefix = ops.broadcast_to(prefix[None], (batch, *prefix.shape))
            return ops.concatenate([prefix, states], axis=1)

        if attention_mask is not None:
            attention_mask = ops.cast(attention_mask, "bool")
            visible = ops.ones((*ops.shape(attention_mask)[:-1], self.length), "bool")
            attention_mask = ops.concatenate([visible, attention_mask], axis=-1)
        return (prepend(self.prefix_key, key), prepend(self.prefix_value, value),
                attention_mask)

    def get_config(self):
        config = super().get_config()
        config.update({"length": self.length, "num_heads": self.num_heads,
                       "head_dim": self.head_dim})
        return config


def check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
