"""Similarity logits between two sets of vectors: the scores of contrastive objectives
(SimCSE on sentences, SimCLR on images)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_mapping")
class CosineSimilarityLogits(keras.layers.Layer):
    """`(batch, batch)` cosine similarities between two sets of vectors, over a temperature.

    Args:
        temperature: divides the similarities (small values sharpen the softmax).
        **kwargs: base `keras.layers.Layer` arguments.
    """

    def __init__(self, temperature=0.05, **kwargs):
        super().__init__(**kwargs)
        if temperature <= 0:
            raise ValueError(f"`temperature` must be positive, got {temperature}.")
        self.temperature = temperature

    def call(self, anchors, positives):
        # float32 whatever the policy: bf16 cosines over a small temperature are too coarse.
        anchors = ops.cast(anchors, "float32")
        positives = ops.cast(positives, "float32")
        anchors = anchors / ops.maximum(ops.norm(anchors, axis=-1, keepdims=True), 1e-12)
        positives = positives / ops.maximum(ops.norm(positives, axis=-1, keepdims=True), 1e-12)
        return ops.matmul(anchors, ops.transpose(positives)) / self.temperature

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}
