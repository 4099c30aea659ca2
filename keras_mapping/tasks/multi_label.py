"""Multi-label classification: any number of labels per text (or pair), each on or off."""

import numpy as np
from keras import ops

from keras_mapping.data.readers import TargetTexts
from keras_mapping.models import BertMultiLabelClassifier
from keras_mapping.tasks.base import TextTask, rounded
from keras_mapping.tasks.metrics import multi_label_metrics, sigmoid, tune_thresholds

_FLAGS = {"0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0, "false": 0.0, "true": 1.0}


def _split_labels(raw, where, delimiter):
    if not isinstance(raw, str):
        raise ValueError(f"{where}: labels must be a string of names separated by "
                         f"{delimiter!r}, found {type(raw).__name__} {raw!r}")
    return [part.strip() for part in raw.split(delimiter) if part.strip()]


def _flag(raw, where, column):
    key = str(raw).strip().lower()
    if key not in _FLAGS:
        raise ValueError(f"{where}: column {column!r} must hold 0 or 1 (a label is off or on), "
                         f"found {raw!r}")
    return _FLAGS[key]


class MultiLabelTask(TextTask):
    """Several labels per row: from one column of names separated by `delimiter`, or from
    0/1 columns (`Columns.label_columns`, whose names are the labels). Sigmoid outputs, binary
    cross-entropy, micro and macro F1 at per-label thresholds.

    Args:
        columns: the `Columns` read.
        label_names: the label set, in output order.
        delimiter: separates labels in one column.
        thresholds: probability above which each label is predicted (one per label).
    """

    name = "multi-label"
    monitor = "micro_f1"
    output_activation = "sigmoid"

    def __init__(self, columns, label_names, delimiter=",", thresholds=None):
        super().__init__(columns)
        self.names = list(label_names)
        self.delimiter = delimiter
        self.thresholds = list(thresholds) if thresholds else [0.5] * len(self.names)

    @classmethod
    def from_training_table(cls, table, columns, delimiter=",", threshold=0.5, **options):
        if columns.label_columns:
            names = list(columns.label_columns)
        else:
            found = {label for where, raw in table.column(columns.label)
                     for label in _split_labels(raw, where, delimiter)}
            names = sorted(found)
        if not names:
            raise ValueError(f"{table.path}: no row holds a label; a multi-label task needs "
                             "at least one")
        return cls(columns, names, delimiter, [threshold] * len(names))

    def _targets_from_names(self, table):
        index = {name: i for i, name in enumerate(self.names)}
        targets = np.zeros((len(table.rows), len(self.names)), "float32")
        for row, (where, raw) in enumerate(table.column(self.columns.label)):
            for label in _split_labels(raw, where, self.delimiter):
                if label not in index:
                    raise ValueError(f"{where}: label {label!r} is not in the label set "
                                     f"{self.names}")
                targets[row, index[label]] = 1.0
        return targets

    def _targets_from_columns(self, table):
        columns = [table.column(name) for name in self.columns.label_columns]
        return np.asarray([[_flag(raw, where, name) for name, (where, raw)
                            in zip(self.columns.label_columns, cells)]
                           for cells in zip(*columns)], "float32").reshape(-1, len(self.names))

    def examples(self, table):
        texts, pairs = self.texts_of(table)
        targets = (self._targets_from_columns(table) if self.columns.label_columns
                   else self._targets_from_names(table))
        return TargetTexts(texts, targets, str(table.path), pairs)

    def build_model(self, backbone, dropout, pooling):
        return BertMultiLabelClassifier(backbone, num_labels=len(self.names), dropout=dropout,
                                        pooling=pooling)

    def report(self, outputs, examples):
        metrics = multi_label_metrics(outputs, examples.targets, self.thresholds)
        return {**metrics, "label_names": self.names}

    def tune_thresholds(self, outputs, examples):
        """Chooses each label's threshold to maximise its F1 on `examples` (the validation
        split), for `report`, `rows` and exports from then on."""
        self.thresholds = tune_thresholds(sigmoid(np.asarray(outputs, "float64")),
                                          examples.targets)

    def rows(self, outputs):
        probabilities = sigmoid(np.asarray(outputs, "float64"))
        return [{"labels": [name for name, p, t in zip(self.names, row, self.thresholds)
                            if p >= t], "probabilities": rounded(row)}
                for row in probabilities]

    def serving_outputs(self, outputs):
        probabilities = ops.sigmoid(ops.cast(outputs, "float32"))
        thresholds = ops.convert_to_tensor(np.asarray(self.thresholds, "float32"))
        return {"probabilities": probabilities,
                "predicted": ops.cast(ops.greater_equal(probabilities, thresholds), "int32")}

    @property
    def label_names(self):
        return self.names

    def config(self):
        return {**super().config(), "names": self.names, "delimiter": self.delimiter,
                "thresholds": self.thresholds}

    @classmethod
    def from_config(cls, config):
        return cls(cls.columns_from(config), config["names"], config["delimiter"],
                   config["thresholds"])
