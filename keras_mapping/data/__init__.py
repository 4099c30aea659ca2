"""Reading labeled text (files, in-memory lists, TensorFlow Datasets) and turning it into
tf.data pipelines of BERT inputs."""

from keras_mapping.data.datasets import load_splits
from keras_mapping.data.pipelines import classification_dataset
from keras_mapping.data.readers import LabeledTexts, LabelVocabulary, from_lists, read_table

__all__ = [
    "LabelVocabulary",
    "LabeledTexts",
    "classification_dataset",
    "from_lists",
    "load_splits",
    "read_table",
]
