"""The Vision Transformer family: backbone and named architectures."""

from keras_mapping.models.vit.backbone import ViTBackbone
from keras_mapping.models.vit.config import ARCHITECTURES as VIT_ARCHITECTURES

__all__ = ["VIT_ARCHITECTURES", "ViTBackbone"]
