"""Images as sequences for Vision Transformers: patch embeddings, then a class token and
learned positions."""

import keras
from keras import ops

from keras_mapping.layers.initializers import clone_initializer
from keras_mapping.layers.position import PositionEmbedding


def as_pair(value, name):
    """`value` as a `(height, width)` pair of positive ints; accepts an int or a pair."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise ValueError(f"`{name}` must be a positive int or a pair of them, got {value!r}.")
    return pair


@keras.saving.register_keras_serializable(package="keras_mapping")
class PatchEmbedding(keras.layers.Layer):
    """Cuts an image into non-overlapping patches and projects each to `hidden_dim` features.

    A convolution whose kernel and stride are the patch size is the same as flattening each
    patch and applying one dense layer, and is how ViT checkpoints store the projection.
    Patches come out in row-major order (left to right, then top to bottom); a trailing
    strip narrower than a patch is dropped, as in the reference implementation.

    Args:
        hidden_dim: features per patch.
        patch_size: patch height and width, an int or a `(height, width)` pair.
        kernel_initializer: initializer of the projection kernel.
        bias_initializer: initializer of the projection bias.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: NHWC float images `(batch, height, width, channels)`.

    Example:
    >>> import numpy as np
    >>> layer = PatchEmbedding(hidden_dim=8, patch_size=4)
    >>> tuple(layer(np.zeros((2, 16, 12, 3), "float32")).shape)  # (16 / 4) * (12 / 4) patches
    (2, 12, 8)
    """

    def __init__(self, hidden_dim, patch_size, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.patch_size = as_pair(patch_size, "patch_size")
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.projection = keras.layers.Conv2D(
            hidden_dim, kernel_size=self.patch_size, strides=self.patch_size, padding="valid",
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy, name="projection")

    def build(self, input_shape):
        self.projection.build(input_shape)
        self.built = True

    def call(self, inputs):
        patches = self.projection(inputs)
        shape = ops.shape(patches)
        return ops.reshape(patches, (-1, shape[1] * shape[2], self.hidden_dim))

    def compute_output_shape(self, input_shape):
        rows, columns = (None if size is None else size // patch
                         for size, patch in zip(input_shape[1:3], self.patch_size))
        count = None if rows is None or columns is None else rows * columns
        return (input_shape[0], count, self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "patch_size": list(self.patch_size),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_mapping")
class ClassTokenAndPositions(keras.layers.Layer):
    """Prepends a learned class token to a sequence of patches and adds a learned position
    embedding to every position, the class token's included (the ViT input embedding).

    Args:
        num_positions: patches per image plus one (for the class token).
        initializer: initializer of the class token and of the position table.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, num_positions - 1, hidden_dim)` patch embeddings.

    Example:
    >>> import numpy as np
    >>> layer = ClassTokenAndPositions(num_positions=5)
    >>> tuple(layer(np.zeros((2, 4, 8), "float32")).shape)
    (2, 5, 8)
    """

    def __init__(self, num_positions, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.num_positions = num_positions
        self.initializer = keras.initializers.get(initializer)
        self.position_embedding = PositionEmbedding(
            num_positions, initializer=clone_initializer(self.initializer),
            dtype=self.dtype_policy, name="position_embedding")

    def build(self, input_shape):
        length = input_shape[1]
        if length is not None and length + 1 != self.num_positions:
            raise ValueError(
                f"{self.name}: got {length} patches, but the layer holds positions for "
                f"{self.num_positions - 1} patches plus the class token; images must have "
                "the size the model was built for.")
        hidden_dim = input_shape[-1]
        self.class_token = self.add_weight(
            name="class_token", shape=(1, 1, hidden_dim),
            initializer=clone_initializer(self.initializer))
        self.position_embedding.build((input_shape[0], self.num_positions, hidden_dim))
        self.built = True

    def call(self, inputs):
        batch_size = ops.shape(inputs)[0]
        class_token = ops.cast(self.class_token, inputs.dtype)
        class_tokens = ops.broadcast_to(class_token, (batch_size, 1, ops.shape(inputs)[-1]))
        sequence = ops.concatenate([class_tokens, inputs], axis=1)
        return sequence + ops.cast(self.position_embedding(sequence), inputs.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_positions, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_positions": self.num_positions,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config
