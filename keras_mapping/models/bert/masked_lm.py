"""Masked language modelling with BERT: predict the tokens hidden at given positions."""

import keras

from keras_mapping.layers import MaskedLMHead
from keras_mapping.models.bert.task import BertTask


def mask_positions_input():
    return keras.Input(shape=(None,), dtype="int32", name="mask_positions")


def masked_lm_head(backbone):
    """A `MaskedLMHead` whose decoder is tied to the backbone's word embeddings."""
    return MaskedLMHead(
        vocabulary_size=backbone.vocabulary_size,
        token_embedding=backbone.token_embedding,
        activation=backbone.activation,
        layer_norm_epsilon=backbone.layer_norm_epsilon,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        name="mlm_head",
    )


@keras.saving.register_keras_serializable(package="keras_mapping")
class BertMaskedLM(BertTask):
    """BERT with the masked-LM head; returns `(batch, num_masked, vocabulary_size)` logits.

    Inputs are the backbone's dict plus `mask_positions` (int, `(batch, num_masked)`).
    Train with `y=mask_ids` and `sample_weight=mask_weights` so padded mask slots count zero;
    `compile()` defaults to AdamW at 1e-4 and a cross-entropy averaged over the real slots
    only, with accuracy weighted the same way (`COMPILE_DEFAULTS["token-prediction"]`).

    Args:
        backbone: a `BertBackbone`.
        **kwargs: base `keras.Model` arguments.

    Example:
    >>> import numpy as np
    >>> from keras_mapping.models import BertBackbone
    >>> backbone = BertBackbone.from_architecture("bert_tiny", vocabulary_size=100)
    >>> model = BertMaskedLM(backbone)
    >>> batch = {"token_ids": np.array([[2, 4, 5, 3]]), "segment_ids": np.zeros((1, 4), "int32"),
    ...          "padding_mask": np.ones((1, 4), bool), "mask_positions": np.array([[1, 2]])}
    >>> tuple(model.predict(batch, verbose=0).shape)
    (1, 2, 100)
    """

    def __init__(self, backbone, **kwargs):
        self.backbone = backbone
        self.mlm_head = masked_lm_head(backbone)
        inputs = {**backbone.input, "mask_positions": mask_positions_input()}
        sequence = backbone({k: inputs[k] for k in backbone.input})["sequence_output"]
        logits = self.mlm_head(sequence, inputs["mask_positions"])
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

    task_kind = "token-prediction"

