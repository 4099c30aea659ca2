"""The Vision Transformer encoder network, built with the functional API."""

import keras

from keras_mapping.layers import (ClassTokenAndPositions, LayerNormalization, PatchEmbedding,
                                  TransformerEncoder)
from keras_mapping.layers.initializers import bert_kernel_initializer
from keras_mapping.layers.patches import as_pair
from keras_mapping.models.image_backbone import ImageBackbone, image_input
from keras_mapping.models.vit import config as vit_config


@keras.saving.register_keras_serializable(package="keras_mapping")
class ViTBackbone(ImageBackbone):
    """ViT: patch embeddings, a class token and learned positions, pre-norm Transformer
    encoder blocks and a final LayerNorm.

    Input: NHWC float images `(batch, height, width, num_channels)` of the size given.
    Outputs, a dict: `sequence_output` `(batch, 1 + patches, hidden_dim)` after the final
    LayerNorm, the class token first; `pooled_output` `(batch, hidden_dim)`, its class token
    (what the reference image classifier reads); `encoder_output`, the last block's output
    before the final LayerNorm.

    Args:
        image_size: image height and width, an int or a `(height, width)` pair.
        patch_size: patch height and width, an int or a pair.
        num_layers: number of encoder blocks.
        num_heads: attention heads per block.
        hidden_dim: feature size.
        intermediate_dim: feed-forward width.
        num_channels: image channels.
        dropout: dropout rate throughout.
        activation: feed-forward activation (the exact GELU by default, as ViT was trained).
        layer_norm_epsilon: LayerNorm epsilon.
        peft: parameter-efficient fine-tuning pieces added to every encoder block, as
            `TransformerEncoder` arguments; see `keras_mapping.models.peft.peft_options`.
            None adds none.
        **kwargs: base `keras.Model` arguments (`name`, `dtype`).

    Example:
    >>> import numpy as np
    >>> backbone = ViTBackbone(image_size=32, patch_size=8, num_layers=2, num_heads=2,
    ...                        hidden_dim=16, intermediate_dim=32)
    >>> outputs = backbone(np.random.rand(2, 32, 32, 3).astype("float32"))
    >>> tuple(outputs["sequence_output"].shape), tuple(outputs["pooled_output"].shape)
    ((2, 17, 16), (2, 16))
    """

    checkpoint_family = "vit"

    def __init__(self, image_size, patch_size, num_layers, num_heads, hidden_dim,
                 intermediate_dim, num_channels=3, dropout=0.0, activation="gelu",
                 layer_norm_epsilon=1e-12, peft=None, dtype=None, **kwargs):
        peft = dict(peft or {})
        patches = [size // patch for size, patch in zip(as_pair(image_size, "image_size"),
                                                         as_pair(patch_size, "patch_size"))]
        if min(patches) < 1:
            raise ValueError(f"`patch_size` {patch_size} is larger than `image_size` "
                             f"{image_size}.")
        self.patch_embedding = PatchEmbedding(
            hidden_dim, patch_size, kernel_initializer=bert_kernel_initializer(),
            dtype=dtype, name="patch_embedding")
        self.class_token_and_positions = ClassTokenAndPositions(
            patches[0] * patches[1] + 1, initializer=bert_kernel_initializer(), dtype=dtype,
            name="class_token_and_positions")
        # One layer named "embeddings", as in BertBackbone: freezing and layer-wise learning
        # rates treat it as the input stem.
        self.embeddings = keras.Sequential(
            [self.patch_embedding, self.class_token_and_positions,
             keras.layers.Dropout(dropout, dtype=dtype, name="dropout")], name="embeddings")
        self.encoder_layers = [
            TransformerEncoder(
                intermediate_dim=intermediate_dim, num_heads=num_heads, dropout=dropout,
                activation=activation,
                layer_norm_epsilon=layer_norm_epsilon, norm_first=True,
                kernel_initializer=bert_kernel_initializer(), dtype=dtype,
                name=f"encoder_layer_{index}", **peft)
            for index in range(num_layers)
        ]
        self.final_layer_norm = LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="final_layer_norm")

        images = image_input(image_size, num_channels)
        x = self.embeddings(images)
        for encoder in self.encoder_layers:
            x = encoder(x)
        sequence = self.final_layer_norm(x)
        super().__init__(
            inputs=images,
            outputs={"sequence_output": sequence, "pooled_output": sequence[:, 0, :],
                     "encoder_output": x},
            dtype=dtype, **kwargs)
        self.image_size = image_size
        self.patch_size = patch_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.num_channels = num_channels
        self.dropout = dropout
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.peft = peft

    def attention_scores(self, images):
        """Attention probabilities of every block, for inspection and plots: a list with one
        `(batch, num_heads, 1 + patches, 1 + patches)` tensor per block."""
        x = self.embeddings(images)
        scores = []
        for encoder in self.encoder_layers:
            x, block_scores = encoder(x, return_attention_scores=True)
            scores.append(block_scores)
        return scores

    @classmethod
    def from_architecture(cls, name, **overrides):
        """A randomly initialized backbone of a named architecture.

        Args:
            name: "vit_tiny", "vit_small" or "vit_base" (224x224 images in 16x16 patches
                unless overridden), or "vit_cifar" (32x32 in 4x4); see `vit.ARCHITECTURES`.
            **overrides: constructor arguments to change, e.g. `image_size`.

        Example:
        >>> backbone = ViTBackbone.from_architecture("vit_tiny", image_size=32, num_layers=1)
        >>> backbone.hidden_dim, len(backbone.encoder_layers)
        (192, 1)
        """
        return cls(**vit_config.architecture(name, **overrides))

    def get_config(self):
        def plain(size):  # JSON has no tuples
            return size if isinstance(size, int) else list(size)

        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "image_size": plain(self.image_size),
            "patch_size": plain(self.patch_size),
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "num_channels": self.num_channels,
            "dropout": self.dropout,
            "activation": self.activation,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "peft": self.peft or None,
        }
