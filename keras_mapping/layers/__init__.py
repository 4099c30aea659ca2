"""Transformer building blocks written in `keras.ops`: attention, positions, embeddings,
image patches, the encoder block, and normalisation run as fused kernels."""

from keras_mapping.layers import activations  # noqa: F401  (registers activation names)
from keras_mapping.layers.attention import MultiHeadAttention
from keras_mapping.layers.embedding import TokenAndPositionEmbedding
from keras_mapping.layers.encoder import TransformerEncoder
from keras_mapping.layers.masked_lm_head import MaskedLMHead
from keras_mapping.layers.normalization import BatchNormalization, LayerNormalization
from keras_mapping.layers.patches import ClassTokenAndPositions, PatchEmbedding
from keras_mapping.layers.pooling import MaskedMeanPooling
from keras_mapping.layers.position import PositionEmbedding, SinusoidalPositionEncoding
from keras_mapping.layers.similarity import CosineSimilarityLogits

__all__ = [
    "BatchNormalization",
    "ClassTokenAndPositions",
    "CosineSimilarityLogits",
    "LayerNormalization",
    "MaskedLMHead",
    "MaskedMeanPooling",
    "MultiHeadAttention",
    "PatchEmbedding",
    "PositionEmbedding",
    "SinusoidalPositionEncoding",
    "TokenAndPositionEmbedding",
    "TransformerEncoder",
]
