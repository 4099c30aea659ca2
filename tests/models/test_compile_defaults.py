"""Compile defaults live once per kind of task: `model.compile()` from Python and the runs of
the CLI train with the same loss (keras_mapping.models.task.COMPILE_DEFAULTS)."""

import keras
import numpy as np
import pytest

from keras_mapping.models import (BertBackbone, BertMaskedLM, BertMultiLabelClassifier,
                                  BertPretrainer, BertTextClassifier, BertTextRegressor)
from keras_mapping.tokenizers import BertTokenizer
from keras_mapping.training.pretrain import PretrainConfig, _compile, build_pretrainer


def tiny_backbone():
    return BertBackbone(vocabulary_size=30522, num_layers=1, num_heads=2, hidden_dim=8,
                        intermediate_dim=16, max_sequence_length=16)


def loss_config(model):
    return keras.tree.map_structure(lambda loss: (type(loss).__name__, loss.reduction),
                                    model.loss)


@pytest.mark.parametrize("objective, model_class", [("mlm", BertMaskedLM),
                                                    ("mlm+nsp", BertPretrainer)])
def test_pretraining_losses_ignore_padded_slots_from_python_and_the_cli(objective, model_class):
    from_python = model_class(tiny_backbone())
    from_python.compile()
    config = PretrainConfig(corpus=["unused.txt"], objective=objective, preset="bert_tiny")
    from_cli = build_pretrainer(config, BertTokenizer.from_preset("minilm_l6"))
    _compile(from_cli, config, total_steps=10)
    assert loss_config(from_python) == loss_config(from_cli)
    mlm_loss = from_python.loss["mlm"] if isinstance(from_python.loss, dict) else from_python.loss
    # Two real slots and one padded one (weight 0): the mean is over the real slots only.
    logits = np.log(np.array([[[0.5, 0.5], [0.25, 0.75], [0.9, 0.1]]], "float32"))
    value = mlm_loss(np.array([[0, 1, 0]]), logits, sample_weight=np.array([[1.0, 1.0, 0.0]]))
    assert float(value) == pytest.approx(-(np.log(0.5) + np.log(0.75)) / 2, rel=1e-5)


@pytest.mark.parametrize("model, loss", [
    (lambda b: BertTextClassifier(b, num_classes=3), "SparseCategoricalCrossentropy"),
    (lambda b: BertTextRegressor(b), "MeanSquaredError"),
    (lambda b: BertMultiLabelClassifier(b, num_labels=4), "BinaryCrossentropy")])
def test_each_kind_of_task_compiles_with_its_own_loss(model, loss):
    built = model(tiny_backbone())
    built.compile()
    assert type(built.loss).__name__ == loss
    assert isinstance(built.optimizer, keras.optimizers.AdamW)
