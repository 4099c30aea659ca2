"""Models assembled from `keras_mapping.layers` with the functional API."""

from keras_mapping.models.bert import (
    ARCHITECTURES,
    BertBackbone,
    BertMaskedLM,
    BertNextSentencePredictor,
    BertPretrainer,
    BertSentenceEncoder,
    BertTextClassifier,
)

__all__ = [
    "ARCHITECTURES",
    "BertBackbone",
    "BertMaskedLM",
    "BertNextSentencePredictor",
    "BertPretrainer",
    "BertSentenceEncoder",
    "BertTextClassifier",
]
