"""Regression of a text or a text pair to a real number (STS-B similarity, ratings)."""

import numpy as np

from keras_mapping.data.readers import TargetTexts
from keras_mapping.models import BertTextRegressor
from keras_mapping.tasks.base import TextTask
from keras_mapping.tasks.metrics import regression_metrics


def _score(raw, where, column):
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(raw, bool) or not np.isfinite(value):
        raise ValueError(f"{where}: label {raw!r} in column {column!r} is not a finite number; "
                         "a regression task needs a number in every row (or pass --task "
                         "classification for class names)")
    return value


class RegressionTask(TextTask):
    """A score per row: a linear head trained with mean-squared error, reported as Pearson
    and Spearman correlation (x100) and MSE.

    Args:
        columns: the `Columns` read (`label` holds the scores).
    """

    name = "regression"
    monitor = "spearman"
    output_activation = "linear"

    @classmethod
    def from_training_table(cls, table, columns, **options):
        return cls(columns)

    def examples(self, table):
        texts, pairs = self.texts_of(table)
        scores = [_score(raw, where, self.columns.label)
                  for where, raw in table.column(self.columns.label)]
        return TargetTexts(texts, np.asarray(scores, "float32")[:, None], str(table.path), pairs)

    def build_model(self, backbone, dropout, pooling):
        return BertTextRegressor(backbone, num_outputs=1, dropout=dropout, pooling=pooling)

    def report(self, outputs, examples):
        return regression_metrics(np.ravel(outputs), np.ravel(examples.targets))

    def rows(self, outputs):
        return [{"score": round(float(value), 6)} for value in np.ravel(outputs)]

    def serving_outputs(self, outputs):
        return {"score": outputs[:, 0]}

    @classmethod
    def from_config(cls, config):
        return cls(cls.columns_from(config))
