"""Masked language modelling with BERT: predict the tokens hidden at given positions."""

import keras

from keras_mapping.layers import MaskedLMHead
from keras_mapping.models.bert.task import BertTask, sparse_logits_loss


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


def masked_lm_compile_defaults(compile_fn, optimizer, loss, weighted_metrics, **kwargs):
    """Calls `compile_fn` with masked-LM defaults filled in for every "auto" argument."""
    compile_fn(
        optimizer=keras.optimizers.AdamW(1e-4) if optimizer == "auto" else optimizer,
        loss=sparse_logits_loss() if loss == "auto" else loss,
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        if weighted_metrics == "auto" else weighted_metrics,
        **kwargs,
    )


@keras.saving.register_keras_serializable(package="keras_mapping")
class BertMaskedLM(BertTask):
    """BERT with the masked-LM head; returns `(batch, num_masked, vocabulary_size)` logits.

    Inputs are the backbone's dict plus `mask_positions` (int, `(batch, num_masked)`).
    Train with `y=mask_ids` and `sample_weight=mask_weights` so padded mask slots count zero.

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

    def compile(self, optimizer="auto", loss="auto", weighted_metrics="auto", **kwargs):
        """`keras.Model.compile` with defaults: AdamW at 1e-4, sparse cross-entropy on logits,
        accuracy weighted by the mask weights."""
        masked_lm_compile_defaults(super().compile, optimizer, loss, weighted_metrics, **kwargs)
