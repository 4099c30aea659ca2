"""The BERT family: backbone, task heads and named architectures."""

from keras_mapping.models.bert.backbone import BertBackbone
from keras_mapping.models.bert.classifier import (BertMultiLabelClassifier, BertTextClassifier,
                                                  BertTextRegressor)
from keras_mapping.models.bert.config import ARCHITECTURES
from keras_mapping.models.bert.contrastive import BertSimCSE, CosineSimilarityLogits
from keras_mapping.models.bert.masked_lm import BertMaskedLM
from keras_mapping.models.bert.pretrainer import BertNextSentencePredictor, BertPretrainer
from keras_mapping.models.bert.sentence_encoder import BertSentenceEncoder
from keras_mapping.models.bert.token_classifier import BertTokenClassifier

__all__ = [
    "ARCHITECTURES",
    "BertBackbone",
    "BertMaskedLM",
    "BertMultiLabelClassifier",
    "BertNextSentencePredictor",
    "BertPretrainer",
    "BertSentenceEncoder",
    "BertSimCSE",
    "BertTextClassifier",
    "BertTextRegressor",
    "BertTokenClassifier",
    "CosineSimilarityLogits",
]
