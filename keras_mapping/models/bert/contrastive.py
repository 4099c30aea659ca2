"""Unsupervised contrastive sentence learning (SimCSE): two dropout views of each sentence,
the other sentences of the batch as negatives."""

import keras

from keras_mapping.layers import CosineSimilarityLogits, MaskedMeanPooling
from keras_mapping.models.bert.task import BertTask


@keras.saving.register_keras_serializable(package="keras_mapping")
class BertSimCSE(BertTask):
    """Runs the backbone twice on the same batch (dropout makes the two views differ),
    mean-pools each view, and scores every first view against every second view. Row i's
    correct "class" is column i, so the targets are `range(batch)` and the loss is sparse
    cross-entropy over the logits (`keras_mapping.data.contrastive_dataset` yields them).

    Args:
        backbone: a `BertBackbone` (with dropout > 0, or the views are identical).
        temperature: softmax temperature of the cosine similarities.
        **kwargs: base `keras.Model` arguments.

    Example:
    >>> import numpy as np
    >>> from keras_mapping.models import BertBackbone
    >>> backbone = BertBackbone.from_architecture("bert_tiny", vocabulary_size=100)
    >>> model = BertSimCSE(backbone)
    >>> batch = {"token_ids": np.array([[2, 5, 3], [2, 6, 3]]),
    ...          "segment_ids": np.zeros((2, 3), "int32"), "padding_mask": np.ones((2, 3), bool)}
    >>> tuple(model.predict(batch, verbose=0).shape)
    (2, 2)
    """

    def __init__(self, backbone, temperature=0.05, **kwargs):
        self.backbone = backbone
        self.pooling = MaskedMeanPooling(normalize=False, name="mean_pooling")
        self.similarity = CosineSimilarityLogits(temperature, name="similarity")
        inputs = backbone.input
        views = [self.pooling(backbone(inputs)["sequence_output"],
                              padding_mask=inputs["padding_mask"]) for _ in range(2)]
        super().__init__(inputs=inputs, outputs=self.similarity(*views), **kwargs)
        # The tanh pooler is unused by this objective.
        backbone.pooler_dense.trainable = False
        self.temperature = temperature

    # AdamW at 3e-5, cross-entropy over the in-batch similarities, and the share of
    # sentences whose own second view ranks first.
    task_kind = "contrastive"

    def task_config(self):
        return {"temperature": self.temperature}
