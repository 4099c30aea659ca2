"""The pieces of a ResNet: a convolution with BatchNorm, the input stem, and the residual
blocks (basic and bottleneck), laid out as in the reference PyTorch implementation."""

import keras
from keras import ops

from keras_mapping.layers.initializers import clone_initializer
from keras_mapping.layers.normalization import BatchNormalization

BLOCK_TYPES = ("basic", "bottleneck")


def he_fan_out():
    """He-normal initialization over the output fan, as the reference ResNet initializes."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_out",
                                              distribution="untruncated_normal")


def pad_spatially(x, amount, value=0.0):
    """Pads height and width by `amount` on both sides, as PyTorch's `padding=amount`.
    ("same" padding would pad strided convolutions on one side only, shifting windows.)"""
    return ops.pad(x, [[0, 0], [amount, amount], [amount, amount], [0, 0]],
                   constant_values=value)


@keras.saving.register_keras_serializable(package="keras_mapping")
class ConvBatchNorm(keras.layers.Layer):
    """A convolution without bias, BatchNorm and an optional activation.

    Args:
        filters: output channels.
        kernel_size: square kernel size; inputs are padded by `kernel_size // 2` each side.
        strides: convolution stride.
        activation: activation name, or None for none.
        kernel_initializer: initializer of the convolution kernel.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: NHWC feature maps.
        training: whether BatchNorm uses (and updates) batch statistics.

    Example:
    >>> import numpy as np
    >>> unit = ConvBatchNorm(filters=4, kernel_size=3, strides=2)
    >>> tuple(unit(np.zeros((1, 8, 8, 3), "float32")).shape)
    (1, 4, 4, 4)
    """

    def __init__(self, filters, kernel_size=3, strides=1, activation="relu",
                 kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.activation = activation
        self.kernel_initializer = keras.initializers.get(kernel_initializer or he_fan_out())
        # Unstrided, "same" pads k // 2 on both sides: PyTorch's padding, without a pad op
        # (8% of ResNet-20's training step on a CPU). Strided, it would pad one side only.
        self.pads_itself = strides == 1 and kernel_size % 2 == 1
        self.convolution = keras.layers.Conv2D(
            filters, kernel_size, strides=strides,
            padding="same" if self.pads_itself else "valid", use_bias=False,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy, name="convolution")
        # PyTorch's defaults: epsilon 1e-5, and its momentum 0.1 is Keras' 0.9. Ours is
        # Keras' layer run as TensorFlow's fused kernel (twice the training speed).
        self.normalization = BatchNormalization(
            momentum=0.9, epsilon=1e-5, dtype=self.dtype_policy, name="normalization")

    def build(self, input_shape):
        padding = 0 if self.pads_itself else self.kernel_size // 2
        padded = [None if size is None else size + 2 * padding for size in input_shape[1:3]]
        self.convolution.build((input_shape[0], *padded, input_shape[3]))
        self.normalization.build(self.compute_output_shape(input_shape))
        self.built = True

    def call(self, inputs, training=None):
        padding = 0 if self.pads_itself else self.kernel_size // 2
        x = pad_spatially(inputs, padding) if padding else inputs
        x = self.normalization(self.convolution(x), training=training)
        return keras.activations.get(self.activation)(x) if self.activation else x

    def compute_output_shape(self, input_shape):
        def size(length):
            if length is None:
                return None
            return (length + 2 * (self.kernel_size // 2) - self.kernel_size) // self.strides + 1

        return (input_shape[0], size(input_shape[1]), size(input_shape[2]), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "activation": self.activation,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_mapping")
class ResNetStem(keras.layers.Layer):
    """The input stem: a `ConvBatchNorm` with its activation, then optionally a 3x3
    stride-2 max-pool (padded by one on each side, as PyTorch pads: with -inf).

    Args:
        filters: output channels.
        kernel_size: convolution kernel size (7 for ImageNet models, 3 for CIFAR ones).
        strides: convolution stride (2 for ImageNet models, 1 for CIFAR ones).
        pool: whether the max-pool follows.
        activation: activation name.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: NHWC images.
        training: whether BatchNorm uses (and updates) batch statistics.

    Example:
    >>> import numpy as np
    >>> stem = ResNetStem(filters=8)
    >>> tuple(stem(np.zeros((1, 32, 32, 3), "float32")).shape)  # 32 / 2 (stride) / 2 (pool)
    (1, 8, 8, 8)
    """

    def __init__(self, filters, kernel_size=7, strides=2, pool=True, activation="relu",
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.pool = pool
        self.activation = activation
        self.convolution_unit = ConvBatchNorm(filters, kernel_size, strides, activation,
                                              dtype=self.dtype_policy, name="embedder")

    def build(self, input_shape):
        self.convolution_unit.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        x = self.convolution_unit(inputs, training=training)
        if self.pool:
            x = ops.max_pool(pad_spatially(x, 1, float("-inf")), 3, strides=2, padding="valid")
        return x

    def compute_output_shape(self, input_shape):
        shape = self.convolution_unit.compute_output_shape(input_shape)
        if self.pool:
            shape = (shape[0], *(None if s is None else (s - 1) // 2 + 1 for s in shape[1:3]),
                     shape[3])
        return shape

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "kernel_size": self.kernel_size,
                       "strides": self.strides, "pool": self.pool,
                       "activation": self.activation})
        return config


@keras.saving.register_keras_serializable(package="keras_mapping")
class ResidualBlock(keras.layers.Layer):
    """A residual block: `activation(units(x) + shortcut(x))`.

    "basic" units are two 3x3 convolutions; "bottleneck" units are a 1x1 convolution down to
    `filters // 4` channels, a 3x3 and a 1x1 back up to `filters`. The last unit has no
    activation of its own. The shortcut is the identity, or a strided 1x1 convolution with
    BatchNorm when the stride or the channel count changes.

    Args:
        filters: output channels.
        strides: stride of the block (2 halves height and width).
        block_type: "basic" or "bottleneck".
        activation: activation name.
        downsample_in_bottleneck: in a bottleneck, stride in the first 1x1 convolution
            (ResNet v1) instead of the 3x3 one (v1.5, the default).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: NHWC feature maps.
        training: whether BatchNorm uses (and updates) batch statistics.

    Example:
    >>> import numpy as np
    >>> block = ResidualBlock(filters=16, strides=2, block_type="bottleneck")
    >>> tuple(block(np.zeros((1, 8, 8, 8), "float32")).shape)
    (1, 4, 4, 16)
    """

    def __init__(self, filters, strides=1, block_type="basic", activation="relu",
                 downsample_in_bottleneck=False, **kwargs):
        if block_type not in BLOCK_TYPES:
            raise ValueError(f"`block_type` must be one of {BLOCK_TYPES}, got {block_type!r}.")
        super().__init__(**kwargs)
        self.filters = filters
        self.strides = strides
        self.block_type = block_type
        self.activation = activation
        self.downsample_in_bottleneck = downsample_in_bottleneck

    def _unit_settings(self):
        """(filters, kernel size, stride, activation) of each unit, input side first."""
        if self.block_type == "basic":
            return [(self.filters, 3, self.strides, self.activation),
                    (self.filters, 3, 1, None)]
        reduced = self.filters // 4
        first_stride = self.strides if self.downsample_in_bottleneck else 1
        return [(reduced, 1, first_stride, self.activation),
                (reduced, 3, self.strides // first_stride, self.activation),
                (self.filters, 1, 1, None)]

    def build(self, input_shape):
        self.convolution_units = []
        shape = input_shape
        for index, (filters, kernel_size, strides, activation) in enumerate(
                self._unit_settings()):
            unit = ConvBatchNorm(filters, kernel_size, strides, activation,
                                 dtype=self.dtype_policy, name=f"layer_{index}")
            unit.build(shape)
            shape = unit.compute_output_shape(shape)
            self.convolution_units.append(unit)
        self.shortcut = None
        if input_shape[-1] != self.filters or self.strides != 1:
            self.shortcut = ConvBatchNorm(self.filters, 1, self.strides, None,
                                          dtype=self.dtype_policy, name="shortcut")
            self.shortcut.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        residual = inputs if self.shortcut is None else self.shortcut(inputs, training=training)
        x = inputs
        for unit in self.convolution_units:
            x = unit(x, training=training)
        return keras.activations.get(self.activation)(x + residual)

    def compute_output_shape(self, input_shape):
        def size(length):
            return None if length is None else (length - 1) // self.strides + 1

        return (input_shape[0], size(input_shape[1]), size(input_shape[2]), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "strides": self.strides,
                       "block_type": self.block_type, "activation": self.activation,
                       "downsample_in_bottleneck": self.downsample_in_bottleneck})
        return config
