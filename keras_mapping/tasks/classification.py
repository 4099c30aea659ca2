"""Single-label classification of a text or a text pair: softmax over classes."""

import numpy as np
from keras import ops

from keras_mapping.data.readers import LabelVocabulary, labeled_texts_from_table
from keras_mapping.models import BertTextClassifier
from keras_mapping.tasks.base import TextTask, rounded
from keras_mapping.tasks.metrics import classification_metrics, softmax


class ClassificationTask(TextTask):
    """One class per row, from a label column; ids come from the training split's
    `LabelVocabulary` (stored with the model).

    Args:
        columns: the `Columns` read.
        vocabulary: the `LabelVocabulary`.
    """

    name = "classification"
    monitor = "accuracy"
    output_activation = "softmax"

    def __init__(self, columns, vocabulary):
        super().__init__(columns)
        self.vocabulary = vocabulary

    @classmethod
    def from_training_table(cls, table, columns, label_names=None, **options):
        examples = labeled_texts_from_table(table, columns.text, columns.label,
                                            columns.text_pair, label_names=label_names)
        if examples.label_vocabulary.num_classes < 2:
            raise ValueError(f"{table.path}: the training data holds 1 label "
                             f"({examples.label_names[0]!r}); a classifier needs at least 2.")
        return cls(columns, examples.label_vocabulary)

    def examples(self, table):
        return labeled_texts_from_table(table, self.columns.text, self.columns.label,
                                        self.columns.text_pair, self.vocabulary)

    def build_model(self, backbone, dropout, pooling):
        return BertTextClassifier(backbone, num_classes=self.vocabulary.num_classes,
                                  dropout=dropout, pooling=pooling)

    def report(self, outputs, examples):
        metrics = classification_metrics(outputs, examples.targets, self.vocabulary.num_classes)
        return {**metrics, "label_names": list(self.vocabulary.names)}

    def rows(self, outputs):
        return class_rows(outputs, self.vocabulary.names)

    def serving_outputs(self, outputs):
        return class_serving_outputs(outputs)

    @property
    def label_names(self):
        return list(self.vocabulary.names)

    def config(self):
        return {**super().config(), "labels": list(self.vocabulary.labels),
                "names": list(self.vocabulary.names)}

    @classmethod
    def from_config(cls, config):
        return cls(cls.columns_from(config),
                   LabelVocabulary(tuple(config["labels"]), tuple(config["names"])))


def class_rows(outputs, names):
    """`predict`'s rows of single-label logits: the most probable class's name and every
    class's probability (shared by every single-label task).

    Example:
    >>> class_rows(np.array([[0.0, np.log(3.0)]]), ["no", "yes"])
    [{'label': 'yes', 'probabilities': [0.25, 0.75]}]
    """
    probabilities = softmax(np.asarray(outputs, "float64"))
    return [{"label": names[int(row.argmax())], "probabilities": rounded(row)}
            for row in probabilities]


def class_serving_outputs(outputs):
    """What an exported single-label classifier returns: `probabilities` and `label_id`."""
    logits = ops.cast(outputs, "float32")
    # top_k rather than argmax: Keras' TensorFlow argmax guards against -0.0 with bitwise
    # ops that TFLite has no kernel for; both pick the first of tied classes.
    _, top = ops.top_k(logits, k=1)
    return {"probabilities": ops.softmax(logits, axis=-1),
            "label_id": ops.cast(top[:, 0], "int32")}
