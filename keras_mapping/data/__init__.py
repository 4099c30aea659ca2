"""Reading labeled text (files, in-memory lists, TensorFlow Datasets) and turning it into
tf.data pipelines of BERT inputs."""

from keras_mapping.data.corpus import CorpusError, CorpusFiles, open_corpus
from keras_mapping.data.corpus_shards import shard_corpus
from keras_mapping.data.corpus_stream import held_out_examples, training_examples
from keras_mapping.data.datasets import load_splits
from keras_mapping.data.pipelines import classification_dataset, text_dataset
from keras_mapping.data.pretraining import (causal_lm_dataset, contrastive_dataset,
                                           masked_lm_dataset, neighbour_pairs,
                                           with_random_second_sentences)
from keras_mapping.data.readers import (LabeledTexts, LabelVocabulary, Table, TargetTexts,
                                        from_lists, read_rows, read_table)

__all__ = [
    "CorpusError",
    "CorpusFiles",
    "LabelVocabulary",
    "LabeledTexts",
    "Table",
    "TargetTexts",
    "causal_lm_dataset",
    "classification_dataset",
    "contrastive_dataset",
    "from_lists",
    "held_out_examples",
    "load_splits",
    "masked_lm_dataset",
    "neighbour_pairs",
    "open_corpus",
    "read_rows",
    "read_table",
    "shard_corpus",
    "text_dataset",
    "training_examples",
    "with_random_second_sentences",
]
