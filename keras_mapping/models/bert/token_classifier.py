"""A tag per word piece: the head of named-entity recognition and other tagging tasks."""

import keras

from keras_mapping.models.bert.task import BertTask
from keras_mapping.models.task import output_layers


@keras.saving.register_keras_serializable(package="keras_mapping")
class BertTokenClassifier(BertTask):
    """Dropout and a dense layer over every position of the backbone's sequence output;
    returns float32 logits `(batch, sequence, num_tags)`. `compile()` defaults to AdamW at
    5e-5, cross-entropy averaged over the weighted pieces only (a word's later pieces and
    padding weigh 0) and accuracy over the same pieces.

    Args:
        backbone: a `BertBackbone`.
        num_tags: number of tags (e.g. 9 for CoNLL-2003's IOB2 tags).
        dropout: dropout rate before the output layer.
        **kwargs: base `keras.Model` arguments.

    Example:
    >>> import numpy as np
    >>> from keras_mapping.models import BertBackbone
    >>> backbone = BertBackbone.from_architecture("bert_tiny", vocabulary_size=100)
    >>> tagger = BertTokenClassifier(backbone, num_tags=5)
    >>> batch = {"token_ids": np.array([[2, 5, 6, 3]]), "segment_ids": np.zeros((1, 4), "int32"),
    ...          "padding_mask": np.ones((1, 4), bool)}
    >>> tuple(tagger.predict(batch, verbose=0).shape)
    (1, 4, 5)
    """

    task_kind = "token-classification"

    def __init__(self, backbone, num_tags, dropout=0.1, **kwargs):
        if not isinstance(num_tags, int) or num_tags < 2:
            raise ValueError(f"`num_tags` must be an integer >= 2, got {num_tags!r}.")
        self.backbone = backbone
        # Only the sequence output is read: the tanh pooler would get no gradient.
        backbone.pooler_dense.trainable = False
        self.output_dropout, self.output_dense = output_layers(num_tags, dropout)
        inputs = backbone.input
        sequence = backbone(inputs)["sequence_output"]
        logits = self.output_dense(self.output_dropout(sequence))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        self.num_tags = num_tags
        self.dropout = dropout

    def task_config(self):
        return {"num_tags": self.num_tags, "dropout": self.dropout}
