"""Position information: fixed sinusoids and learned position embeddings."""

import keras
from keras import ops

from keras_mapping.layers.initializers import clone_initializer


@keras.saving.register_keras_serializable(package="keras_mapping")
class SinusoidalPositionEncoding(keras.layers.Layer):
    """The fixed sine/cosine position encoding of "Attention Is All You Need".

    `PE[p, 2i] = sin(p / max_wavelength^(2i / d))` and
    `PE[p, 2i + 1] = cos(p / max_wavelength^(2i / d))` for a feature size `d` (odd `d` ends
    on a sine column). Computed on the fly, so any sequence length works; returns the
    encoding broadcast to the input's shape, to be added to it.

    Args:
        max_wavelength: the base of the geometric progression of wavelengths.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, sequence_length, d)` tensor (only its shape is used).
        start_index: position of the first element, for decoding one step at a time.

    Example:
    >>> import numpy as np
    >>> encoding = SinusoidalPositionEncoding()(np.zeros((2, 3, 4), "float32"))
    >>> np.round(np.asarray(encoding, "float64")[0, 1], 3).tolist()  # sin 1, cos 1, sin .01, cos .01
    [0.841, 0.54, 0.01, 1.0]
    """

    def __init__(self, max_wavelength=10000, **kwargs):
        if max_wavelength <= 0:
            raise ValueError(f"`max_wavelength` must be positive, got {max_wavelength!r}.")
        super().__init__(**kwargs)
        self.max_wavelength = max_wavelength
        self.supports_masking = True
        self.built = True

    def call(self, inputs, start_index=0):
        shape = ops.shape(inputs)
        length, dim = shape[-2], shape[-1]
        positions = ops.cast(ops.arange(length) + start_index, self.compute_dtype)
        features = ops.arange(dim)
        # Columns 2i and 2i+1 share the frequency of their even column 2i.
        even_index = ops.cast(features - features % 2, self.compute_dtype)
        dim_float = ops.cast(dim, self.compute_dtype)
        inverse_frequency = ops.power(
            ops.cast(self.max_wavelength, self.compute_dtype), -even_index / dim_float)
        angles = ops.expand_dims(positions, -1) * ops.expand_dims(inverse_frequency, 0)
        is_even = ops.expand_dims(features % 2 == 0, 0)
        encoding = ops.where(is_even, ops.sin(angles), ops.cos(angles))
        return ops.broadcast_to(encoding, shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["max_wavelength"] = self.max_wavelength
        return config


@keras.saving.register_keras_serializable(package="keras_mapping")
class PositionEmbedding(keras.layers.Layer):
    """A learned embedding per position, up to `sequence_length` positions.

    Args:
        sequence_length: the largest number of positions the layer can encode.
        initializer: initializer of the `(sequence_length, d)` embedding table.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, length, d)` tensor with `length <= sequence_length`.
        start_index: position of the first element.

    Example:
    >>> import numpy as np
    >>> layer = PositionEmbedding(sequence_length=16)
    >>> tuple(layer(np.zeros((2, 5, 8), "float32")).shape)
    (2, 5, 8)
    """

    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        if not isinstance(sequence_length, int) or sequence_length <= 0:
            raise ValueError(
                f"`sequence_length` must be a positive integer, got {sequence_length!r}.")
        super().__init__(**kwargs)
        self.sequence_length = sequence_length
        self.initializer = keras.initializers.get(initializer)
        self.supports_masking = True

    def build(self, input_shape):
        self.position_embeddings = self.add_weight(
            name="embeddings",
            shape=(self.sequence_length, input_shape[-1]),
            initializer=clone_initializer(self.initializer),
        )
        self.built = True

    def call(self, inputs, start_index=0):
        shape = ops.shape(inputs)
        length = shape[-2]
        if isinstance(length, int) and length > self.sequence_length:
            raise ValueError(
                f"{self.name}: input has {length} positions but the layer was built for "
                f"`sequence_length={self.sequence_length}`.")
        table = ops.convert_to_tensor(self.position_embeddings)
        positions = ops.slice(table, (start_index, 0), (length, shape[-1]))
        return ops.broadcast_to(positions, shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config
