"""Several task models trained for the same task, run as one model."""

import keras
from keras import ops

ACTIVATIONS = ("softmax", "sigmoid", "linear")
# Averaged probabilities are kept this far from 0 (and 1, for sigmoid outputs) before their
# logarithm: a class that every member rules out gets a large negative logit, not -inf.
SMALLEST_PROBABILITY = 1e-7


def _fresh_inputs(model):
    """New `keras.Input`s with the names, shapes and dtypes of a functional model's."""
    return keras.tree.map_structure(
        lambda tensor: keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype,
                                   name=tensor.name), model.input)


def _as_outputs(probabilities, activation):
    """The members' own terms for averaged probabilities: outputs whose `activation` gives
    them back (log-probabilities for softmax, log-odds for sigmoid)."""
    probabilities = ops.clip(probabilities, SMALLEST_PROBABILITY,
                             1.0 - SMALLEST_PROBABILITY if activation == "sigmoid" else 1.0)
    if activation == "softmax":
        return ops.log(probabilities)
    return ops.log(probabilities) - ops.log1p(-probabilities)


def average_outputs(outputs, activation):
    """Averages the members' outputs after the task's output `activation` and returns the
    result before it: for softmax and sigmoid outputs the members' probabilities are
    averaged (not their logits, whose scale differs between members); linear outputs
    (regression scores) are averaged as they are."""
    if activation == "linear":
        return ops.mean(ops.stack(outputs), axis=0)
    apply = ops.softmax if activation == "softmax" else ops.sigmoid
    probabilities = ops.mean(ops.stack([apply(ops.cast(output, "float32"))
                                        for output in outputs]), axis=0)
    return _as_outputs(probabilities, activation)


@keras.saving.register_keras_serializable(package="keras_mapping")
class EnsembleModel(keras.Model):
    """Task models with the same inputs and outputs (e.g. fine-tuned from different seeds),
    as one functional model that returns their averaged prediction in their own terms:
    after the task's output `activation` its outputs are the mean of the members'
    probabilities (or scores). Whatever runs a task model (evaluate, predict, every export
    format) therefore runs an ensemble unchanged; it costs each member's time and size.

    Args:
        members: two or more task models (functional Keras models) taking the same inputs;
            they are renamed `member_0`, `member_1`, ...
        activation: the task's output activation: "softmax" (classes), "sigmoid" (several
            labels) or "linear" (scores).
        **kwargs: base `keras.Model` arguments.

    Example:
    >>> import numpy as np
    >>> from keras_mapping.models import BertBackbone, BertTextClassifier
    >>> members = [BertTextClassifier(BertBackbone.from_architecture(
    ...     "bert_tiny", vocabulary_size=50), num_classes=2) for _ in range(2)]
    >>> ensemble = EnsembleModel(members, activation="softmax")
    >>> features = {"token_ids": np.array([[2, 7, 3]]), "segment_ids": np.zeros((1, 3)),
    ...             "padding_mask": np.ones((1, 3))}
    >>> probabilities = ops.softmax(ensemble(features))
    >>> mean = (ops.softmax(members[0](features)) + ops.softmax(members[1](features))) / 2
    >>> bool(ops.max(ops.abs(probabilities - mean)) < 1e-6)
    True
    """

    def __init__(self, members, activation="softmax", **kwargs):
        if activation not in ACTIVATIONS:
            raise ValueError(f"`activation` must be one of {ACTIVATIONS}, got "
                             f"{activation!r}.")
        if len(members) < 2:
            raise ValueError(f"An ensemble needs at least two members, got {len(members)}.")
        for index, member in enumerate(members):
            member.name = f"member_{index}"  # a functional model's layers need unique names
        inputs = _fresh_inputs(members[0])
        outputs = average_outputs([member(inputs) for member in members], activation)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.members = list(members)
        self.activation = activation

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "activation": self.activation,
                "members": [keras.saving.serialize_keras_object(member)
                            for member in self.members]}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["members"] = [keras.saving.deserialize_keras_object(member)
                             for member in config["members"]]
        return cls(**config)
