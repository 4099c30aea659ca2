"""Heads over a pooled sentence (or sentence-pair) vector: class logits, regression scores,
and per-label logits for multi-label classification."""

import keras

from keras_mapping.layers import MaskedMeanPooling
from keras_mapping.models.bert.task import BertTask
from keras_mapping.models.task import output_layers

POOLINGS = ("cls", "mean")


class BertPooledHead(BertTask):
    """Dropout and a dense layer of `units` over a pooled sentence vector; returns its
    float32 outputs (logits or scores). Subclasses name the units and the kind of task.

    Args:
        backbone: a `BertBackbone`.
        units: outputs per example.
        dropout: dropout rate before the output layer.
        pooling: "cls" uses the backbone's pooled `[CLS]` output (BERT's own head); "mean"
            averages the sequence output over real tokens, which suits checkpoints trained
            as sentence encoders with mean pooling (such as `minilm_l6`).
        **kwargs: base `keras.Model` arguments.
    """

    def __init__(self, backbone, units, dropout=0.1, pooling="cls", **kwargs):
        if pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}, got {pooling!r}.")
        self.backbone = backbone
        self.output_dropout, self.output_dense = output_layers(units, dropout)
        inputs = backbone.input
        outputs = backbone(inputs)
        if pooling == "mean":
            # The tanh pooler gets no gradient here; freezing it spares optimizer slots and
            # Keras' missing-gradient warnings.
            backbone.pooler_dense.trainable = False
            pooled = MaskedMeanPooling(normalize=False, name="mean_pooling")(
                outputs["sequence_output"], padding_mask=inputs["padding_mask"])
        else:
            pooled = outputs["pooled_output"]
        logits = self.output_dense(self.output_dropout(pooled))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        self.dropout = dropout
        self.pooling = pooling


@keras.saving.register_keras_serializable(package="keras_mapping")
class BertTextClassifier(BertPooledHead):
    """Class logits for a text or a text pair; `compile()` defaults to AdamW at 5e-5,
    sparse cross-entropy on logits and accuracy.

    Args:
        backbone: a `BertBackbone`.
        num_classes: number of labels.
        dropout: dropout rate before the output layer.
        pooling: "cls" or "mean" (see `BertPooledHead`).
        **kwargs: base `keras.Model` arguments.

    Example:
    >>> import numpy as np
    >>> from keras_mapping.models import BertBackbone
    >>> backbone = BertBackbone.from_architecture("bert_tiny", vocabulary_size=100)
    >>> classifier = BertTextClassifier(backbone, num_classes=3)
    >>> batch = {"token_ids": np.array([[2, 5, 3]]), "segment_ids": np.zeros((1, 3), "int32"),
    ...          "padding_mask": np.ones((1, 3), bool)}
    >>> tuple(classifier.predict(batch, verbose=0).shape)
    (1, 3)
    """

    task_kind = "classification"

    def __init__(self, backbone, num_classes, dropout=0.1, pooling="cls", **kwargs):
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"`num_classes` must be an integer >= 2, got {num_classes!r}.")
        super().__init__(backbone, num_classes, dropout, pooling, **kwargs)
        self.num_classes = num_classes

    def task_config(self):
        return {"num_classes": self.num_classes, "dropout": self.dropout,
                "pooling": self.pooling}


@keras.saving.register_keras_serializable(package="keras_mapping")
class BertTextRegressor(BertPooledHead):
    """Real-valued scores for a text or a text pair (e.g. STS-B similarity as a
    cross-encoder); returns `(batch, num_outputs)`. `compile()` defaults to AdamW at 5e-5,
    mean-squared error and mean absolute error.

    Args:
        backbone: a `BertBackbone`.
        num_outputs: scores per example.
        dropout: dropout rate before the output layer.
        pooling: "cls" or "mean" (see `BertPooledHead`).
        **kwargs: base `keras.Model` arguments.
    """

    task_kind = "regression"

    def __init__(self, backbone, num_outputs=1, dropout=0.1, pooling="cls", **kwargs):
        if not isinstance(num_outputs, int) or num_outputs < 1:
            raise ValueError(f"`num_outputs` must be an integer >= 1, got {num_outputs!r}.")
        super().__init__(backbone, num_outputs, dropout, pooling, **kwargs)
        self.num_outputs = num_outputs

    def task_config(self):
        return {"num_outputs": self.num_outputs, "dropout": self.dropout,
                "pooling": self.pooling}


@keras.saving.register_keras_serializable(package="keras_mapping")
class BertMultiLabelClassifier(BertPooledHead):
    """One logit per label, each label on or off independently (sigmoid); `compile()`
    defaults to AdamW at 5e-5, binary cross-entropy on logits and micro F1 at 0.5.

    Args:
        backbone: a `BertBackbone`.
        num_labels: number of labels.
        dropout: dropout rate before the output layer.
        pooling: "cls" or "mean" (see `BertPooledHead`).
        **kwargs: base `keras.Model` arguments.
    """

    task_kind = "multi-label"

    def __init__(self, backbone, num_labels, dropout=0.1, pooling="cls", **kwargs):
        if not isinstance(num_labels, int) or num_labels < 1:
            raise ValueError(f"`num_labels` must be an integer >= 1, got {num_labels!r}.")
        super().__init__(backbone, num_labels, dropout, pooling, **kwargs)
        self.num_labels = num_labels

    def task_config(self):
        return {"num_labels": self.num_labels, "dropout": self.dropout,
                "pooling": self.pooling}
