"""The ResNet network, built with the functional API."""

import keras

from keras_mapping.models.image_backbone import ImageBackbone, image_input
from keras_mapping.models.resnet import config as resnet_config
from keras_mapping.models.resnet.blocks import BLOCK_TYPES, ResidualBlock, ResNetStem

# Input stems: ImageNet models reduce the image 4x before the first stage, CIFAR ones not.
STEMS = {"imagenet": dict(kernel_size=7, strides=2, pool=True),
         "cifar": dict(kernel_size=3, strides=1, pool=False)}


@keras.saving.register_keras_serializable(package="keras_mapping")
class ResNetBackbone(ImageBackbone):
    """ResNet: a convolutional stem, then stages of residual blocks with BatchNorm, the
    first block of every stage but the first halving height and width.

    Input: NHWC float images. Outputs, a dict: `feature_map`, the last stage's output
    `(batch, height', width', hidden_sizes[-1])`, and `pooled_output`, its average over
    space `(batch, hidden_sizes[-1])`.

    Args:
        embedding_size: channels of the stem.
        hidden_sizes: output channels of each stage.
        depths: residual blocks in each stage.
        layer_type: "basic" (two 3x3 convolutions) or "bottleneck" (1x1, 3x3, 1x1) blocks.
        num_channels: image channels.
        activation: activation name.
        downsample_in_first_stage: let the first stage halve height and width too.
        downsample_in_bottleneck: stride in a bottleneck's first 1x1 convolution (v1)
            instead of its 3x3 one (v1.5).
        stem: "imagenet" (7x7 stride-2 convolution and a max-pool) or "cifar" (a 3x3
            convolution, no pooling).
        image_size: image height and width (an int or a pair), or None for any size.
        **kwargs: base `keras.Model` arguments (`name`, `dtype`).

    Example:
    >>> import numpy as np
    >>> backbone = ResNetBackbone.from_architecture("resnet20")
    >>> outputs = backbone(np.zeros((2, 32, 32, 3), "float32"))
    >>> tuple(outputs["feature_map"].shape), tuple(outputs["pooled_output"].shape)
    ((2, 8, 8, 64), (2, 64))
    """

    checkpoint_family = "resnet"

    def __init__(self, embedding_size=64, hidden_sizes=(256, 512, 1024, 2048),
                 depths=(3, 4, 6, 3), layer_type="bottleneck", num_channels=3,
                 activation="relu", downsample_in_first_stage=False,
                 downsample_in_bottleneck=False, stem="imagenet", image_size=None, dtype=None,
                 **kwargs):
        if stem not in STEMS:
            raise ValueError(f"`stem` must be one of {sorted(STEMS)}, got {stem!r}.")
        if layer_type not in BLOCK_TYPES:
            raise ValueError(f"`layer_type` must be one of {BLOCK_TYPES}, got {layer_type!r}.")
        if not depths or len(hidden_sizes) != len(depths) or min(depths) < 1:
            raise ValueError(f"`hidden_sizes` {list(hidden_sizes)} and `depths` {list(depths)} "
                             "need one entry per stage each, and every depth at least 1.")
        self.embeddings = ResNetStem(embedding_size, activation=activation, dtype=dtype,
                                     name="embeddings", **STEMS[stem])
        self.encoder_layers = []
        for stage, (filters, depth) in enumerate(zip(hidden_sizes, depths)):
            for index in range(depth):
                halves = index == 0 and (stage > 0 or downsample_in_first_stage)
                self.encoder_layers.append(ResidualBlock(
                    filters, strides=2 if halves else 1, block_type=layer_type,
                    activation=activation, downsample_in_bottleneck=downsample_in_bottleneck,
                    dtype=dtype, name=f"encoder_layer_{len(self.encoder_layers)}"))
        self.pooling = keras.layers.GlobalAveragePooling2D(dtype=dtype, name="pooling")

        images = image_input(image_size, num_channels)
        x = self.embeddings(images)
        for block in self.encoder_layers:
            x = block(x)
        super().__init__(inputs=images,
                         outputs={"feature_map": x, "pooled_output": self.pooling(x)},
                         dtype=dtype, **kwargs)
        self.embedding_size = embedding_size
        self.hidden_sizes = list(hidden_sizes)
        self.depths = list(depths)
        self.layer_type = layer_type
        self.num_channels = num_channels
        self.activation = activation
        self.downsample_in_first_stage = downsample_in_first_stage
        self.downsample_in_bottleneck = downsample_in_bottleneck
        self.stem = stem
        self.image_size = image_size
        self.num_layers = len(self.encoder_layers)

    @classmethod
    def from_architecture(cls, name, **overrides):
        """A randomly initialized backbone of a named architecture.

        Args:
            name: "resnet8", "resnet20", "resnet56" (CIFAR), "resnet18" or "resnet50"
                (ImageNet); see `resnet.ARCHITECTURES`.
            **overrides: constructor arguments to change.
        """
        return cls(**resnet_config.architecture(name, **overrides))

    def get_config(self):
        image_size = self.image_size
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "embedding_size": self.embedding_size,
            "hidden_sizes": self.hidden_sizes,
            "depths": self.depths,
            "layer_type": self.layer_type,
            "num_channels": self.num_channels,
            "activation": self.activation,
            "downsample_in_first_stage": self.downsample_in_first_stage,
            "downsample_in_bottleneck": self.downsample_in_bottleneck,
            "stem": self.stem,
            "image_size": image_size if image_size is None or isinstance(image_size, int)
            else list(image_size),
        }
