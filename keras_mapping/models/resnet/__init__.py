"""The ResNet family: backbone, its blocks and named architectures."""

from keras_mapping.models.resnet.backbone import ResNetBackbone
from keras_mapping.models.resnet.blocks import ConvBatchNorm, ResidualBlock, ResNetStem
from keras_mapping.models.resnet.config import ARCHITECTURES as RESNET_ARCHITECTURES

__all__ = ["ConvBatchNorm", "RESNET_ARCHITECTURES", "ResNetBackbone", "ResNetStem",
           "ResidualBlock"]
