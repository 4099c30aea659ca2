"""Sentence (or sentence-pair) classification on top of BERT's pooled output."""

import keras

from keras_mapping.layers import MaskedMeanPooling
from keras_mapping.models.bert.task import BertTask, sparse_logits_loss

POOLINGS = ("cls", "mean")


@keras.saving.register_keras_serializable(package="keras_mapping")
class BertTextClassifier(BertTask):
    """Dropout and a dense layer over a pooled sentence vector; returns logits.

    Args:
        backbone: a `BertBackbone`.
        num_classes: number of labels.
        dropout: dropout rate before the output layer.
        pooling: "cls" uses the backbone's pooled `[CLS]` output (BERT's own head); "mean"
            averages the sequence output over real tokens, which suits checkpoints trained
            as sentence encoders with mean pooling (such as `minilm_l6`).
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

    def __init__(self, backbone, num_classes, dropout=0.1, pooling="cls", **kwargs):
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"`num_classes` must be an integer >= 2, got {num_classes!r}.")
        if pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}, got {pooling!r}.")
        self.backbone = backbone
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            num_classes,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype="float32",  # logits in full precision under mixed policies
            name="logits",
        )
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
        self.num_classes = num_classes
        self.dropout = dropout
        self.pooling = pooling

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """`keras.Model.compile` with fine-tuning defaults: AdamW at 5e-5, sparse
        cross-entropy on logits, accuracy."""
        super().compile(
            optimizer=keras.optimizers.AdamW(5e-5) if optimizer == "auto" else optimizer,
            loss=sparse_logits_loss() if loss == "auto" else loss,
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
            if metrics == "auto" else metrics,
            **kwargs,
        )

    def task_config(self):
        return {"num_classes": self.num_classes, "dropout": self.dropout,
                "pooling": self.pooling}
