"""BERT's pretraining objectives: next-sentence prediction, and masked LM + NSP together."""

import keras

from keras_mapping.models.bert.classifier import BertTextClassifier
from keras_mapping.models.bert.masked_lm import mask_positions_input, masked_lm_head
from keras_mapping.models.bert.task import BertTask


@keras.saving.register_keras_serializable(package="keras_mapping")
class BertNextSentencePredictor(BertTextClassifier):
    """Is segment B the sentence that follows segment A? Two logits: 0 = yes, 1 = random.

    A `BertTextClassifier` with two classes and no extra dropout, as in BERT's pretraining.

    Args:
        backbone: a `BertBackbone`.
        **kwargs: base `keras.Model` arguments.
    """

    def __init__(self, backbone, **kwargs):
        kwargs.pop("num_classes", None)
        kwargs.pop("dropout", None)
        super().__init__(backbone, num_classes=2, dropout=0.0, **kwargs)

    def task_config(self):
        return {}


@keras.saving.register_keras_serializable(package="keras_mapping")
class BertPretrainer(BertTask):
    """Masked LM and next-sentence prediction on one backbone, trained on the sum of losses.

    Inputs: the backbone's dict plus `mask_positions`. Outputs: `{"mlm": (batch, num_masked,
    vocabulary_size) logits, "nsp": (batch, 2) logits}`. Train with
    `y={"mlm": mask_ids, "nsp": next_sentence_labels}` and
    `sample_weight={"mlm": mask_weights}` (missing entries weigh 1).

    Args:
        backbone: a `BertBackbone`.
        nsp_weight: weight of the next-sentence loss in the total.
        **kwargs: base `keras.Model` arguments.

    Example:
    >>> import numpy as np
    >>> from keras_mapping.models import BertBackbone
    >>> backbone = BertBackbone.from_architecture("bert_tiny", vocabulary_size=100)
    >>> pretrainer = BertPretrainer(backbone)
    >>> batch = {"token_ids": np.array([[2, 4, 3, 5, 3]]), "segment_ids": np.array([[0, 0, 0, 1, 1]]),
    ...          "padding_mask": np.ones((1, 5), bool), "mask_positions": np.array([[1]])}
    >>> {name: tuple(out.shape) for name, out in pretrainer.predict(batch, verbose=0).items()}
    {'mlm': (1, 1, 100), 'nsp': (1, 2)}
    """

    def __init__(self, backbone, nsp_weight=1.0, **kwargs):
        self.backbone = backbone
        self.mlm_head = masked_lm_head(backbone)
        self.nsp_dense = keras.layers.Dense(
            2, kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype="float32", name="nsp")
        inputs = {**backbone.input, "mask_positions": mask_positions_input()}
        outputs = backbone({k: inputs[k] for k in backbone.input})
        mlm_logits = self.mlm_head(outputs["sequence_output"], inputs["mask_positions"])
        mlm_logits = keras.layers.Activation("linear", dtype="float32", name="mlm")(mlm_logits)
        nsp_logits = self.nsp_dense(outputs["pooled_output"])
        super().__init__(inputs=inputs, outputs={"mlm": mlm_logits, "nsp": nsp_logits}, **kwargs)
        self.nsp_weight = nsp_weight

    task_kind = "pretraining"

    def compile(self, optimizer="auto", loss_weights="auto", **kwargs):
        """`keras.Model.compile` with pretraining defaults (`COMPILE_DEFAULTS["pretraining"]`):
        AdamW at 1e-4, the masked-LM cross-entropy over real slots only plus the NSP
        cross-entropy weighted by `nsp_weight`, accuracy of both."""
        super().compile(optimizer=optimizer, loss_weights={"mlm": 1.0, "nsp": self.nsp_weight}
                        if loss_weights == "auto" else loss_weights, **kwargs)

    def task_config(self):
        return {"nsp_weight": self.nsp_weight}
