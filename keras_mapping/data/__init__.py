"""Reading labeled text (files, in-memory lists, TensorFlow Datasets) and turning it into
tf.data pipelines of BERT inputs."""

from keras_mapping.data.corpus import Corpus, CorpusError, read_corpus
from keras_mapping.data.datasets import load_splits
from keras_mapping.data.pipelines import classification_dataset, text_dataset
from keras_mapping.data.pretraining import (causal_lm_dataset, contrastive_dataset,
                                           masked_lm_dataset, next_sentence_pairs)
from keras_mapping.data.readers import (LabeledTexts, LabelVocabulary, Table, TargetTexts,
                                        from_lists, read_rows, read_table)

__all__ = [
    "Corpus",
    "CorpusError",
    "LabelVocabulary",
    "LabeledTexts",
    "Table",
    "TargetTexts",
    "causal_lm_dataset",
    "classification_dataset",
    "contrastive_dataset",
    "from_lists",
    "load_splits",
    "masked_lm_dataset",
    "next_sentence_pairs",
    "read_corpus",
    "read_rows",
    "read_table",
    "text_dataset",
]
