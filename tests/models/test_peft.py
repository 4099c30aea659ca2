import keras
import numpy as np
import pytest

from keras_mapping.layers.peft import LORA_TARGETS
from keras_mapping.models import BertBackbone, BertTextClassifier
from keras_mapping.models.peft import (merge_lora, peft_options, select_trainable,
                                       trainable_parameters)

# bert_tiny sizes: 2 layers, hidden 128, feed-forward 512, vocabulary 100, 512 positions.
LAYERS, HIDDEN, FEEDFORWARD = 2, 128, 512
HEAD = HIDDEN * 2 + 2
BATCH = {"token_ids": np.array([[2, 11, 17, 42, 3, 0], [2, 5, 9, 3, 0, 0]]),
         "segment_ids": np.zeros((2, 6), "int32"),
         "padding_mask": np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]], bool)}


def classifier(method, pooling="mean", **settings):
    keras.utils.set_random_seed(7)
    backbone = BertBackbone.from_architecture(
        "bert_tiny", vocabulary_size=100, dropout=0.0, peft=peft_options(method, **settings))
    model = BertTextClassifier(backbone, num_classes=2, dropout=0.0, pooling=pooling)
    select_trainable(model, method)
    return model


def expected_counts():
    embeddings = 100 * HIDDEN + 512 * HIDDEN + 2 * HIDDEN + 2 * HIDDEN
    attention = 4 * (HIDDEN * HIDDEN + HIDDEN)
    feedforward = 2 * HIDDEN * FEEDFORWARD + FEEDFORWARD + HIDDEN
    block = attention + feedforward + 2 * 2 * HIDDEN
    biases_per_block = 4 * HIDDEN + FEEDFORWARD + HIDDEN + 2 * HIDDEN
    lora_attention = 4 * 8 * (HIDDEN + HIDDEN)
    lora_feedforward = 2 * 8 * (HIDDEN + FEEDFORWARD)
    adapter = 2 * (HIDDEN * 32 + 32 + 32 * HIDDEN + HIDDEN)
    return {
        # Mean pooling leaves the tanh pooler frozen, whatever the method.
        "full": (embeddings + LAYERS * block + HEAD, {}),
        "bitfit": (LAYERS * biases_per_block + HIDDEN + HEAD, {}),
        "lora": (LAYERS * lora_attention + HEAD, {}),
        "lora_all": (LAYERS * (lora_attention + lora_feedforward) + HEAD,
                     {"lora_targets": LORA_TARGETS}),
        "adapter": (LAYERS * (adapter + 4 * HIDDEN) + 2 * HIDDEN + HEAD, {}),
        "prefix": (LAYERS * 2 * 16 * HIDDEN + HEAD, {}),
        "linear-probe": (HEAD, {}),
    }


@pytest.mark.parametrize("case", list(expected_counts()))
def test_exact_trainable_parameter_counts(case):
    expected, settings = expected_counts()[case]
    model = classifier(case.split("_")[0], **settings)
    assert trainable_parameters(model) == expected


def test_cls_pooling_trains_the_pooler_under_bitfit():
    mean = trainable_parameters(classifier("bitfit"))
    assert trainable_parameters(classifier("bitfit", pooling="cls")) == mean + HIDDEN


@pytest.mark.parametrize("method,settings", [("lora", {"lora_targets": LORA_TARGETS}),
                                             ("adapter", {})])
def test_zero_initialised_pieces_reproduce_the_base_model(method, settings):
    base = classifier("full")
    tuned = classifier(method, **settings)
    weights = {v.path: v for v in base.weights}
    copied = 0
    for variable in tuned.weights:
        if variable.path in weights:
            variable.assign(weights[variable.path])
            copied += 1
    assert copied == len(base.weights) < len(tuned.weights)
    np.testing.assert_allclose(np.asarray(tuned(BATCH)), np.asarray(base(BATCH)), atol=1e-6)


def test_merged_lora_equals_unmerged_outputs():
    model = classifier("lora", lora_targets=LORA_TARGETS, lora_rank=4, lora_alpha=8.0)
    rng = np.random.default_rng(0)
    for variable in model.trainable_weights:
        if "lora_b" in variable.path:
            variable.assign(rng.normal(scale=0.05, size=variable.shape))
    unmerged = np.asarray(model(BATCH))
    merged = merge_lora(model)
    assert not any("lora" in v.path for v in merged.weights)
    assert merged.count_params() == model.count_params() - sum(
        int(np.prod(v.shape)) for v in model.weights if "lora" in v.path)
    assert np.abs(unmerged - np.asarray(model.backbone(BATCH)["sequence_output"]).mean()).max()
    np.testing.assert_allclose(np.asarray(merged(BATCH)), unmerged, atol=1e-5)


@pytest.mark.parametrize("method", ["full", "adapter", "lora", "prefix", "bitfit"])
def test_loss_falls_for_each_method(method):
    model = classifier(method)
    frozen_before = {v.path: np.asarray(v) for v in model.non_trainable_weights}
    rng = np.random.default_rng(1)
    tokens = rng.integers(5, 100, size=(32, 8)).astype("int32")
    tokens[:, 0], tokens[:, -1] = 2, 3
    labels = (tokens[:, 1] > 50).astype("int32")
    inputs = {"token_ids": tokens, "segment_ids": np.zeros_like(tokens),
              "padding_mask": np.ones_like(tokens, bool)}
    model.compile(optimizer=keras.optimizers.Adam(1e-2 if method != "full" else 1e-3))
    history = model.fit(inputs, labels, batch_size=32, epochs=30, verbose=0)
    losses = history.history["loss"]
    assert np.mean(losses[-5:]) < 0.75 * losses[0], losses
    for variable in model.non_trainable_weights:
        np.testing.assert_array_equal(np.asarray(variable), frozen_before[variable.path])


def test_method_errors_name_the_problem():
    with pytest.raises(ValueError, match="`lora_rank` must be a positive integer, got 0"):
        peft_options("lora", lora_rank=0)
    with pytest.raises(ValueError, match="`method` must be one of"):
        peft_options("qlora")
    with pytest.raises(ValueError, match="lora_targets"):
        peft_options("lora", lora_targets=["pooler"])
    plain = BertTextClassifier(BertBackbone.from_architecture("bert_tiny", vocabulary_size=100),
                               num_classes=2)
    with pytest.raises(ValueError, match="method 'lora' needs a backbone built with its "
                                         "pieces.*no `lora_rank`"):
        select_trainable(plain, "lora")
    with pytest.raises(ValueError, match="no LoRA updates to merge"):
        merge_lora(plain)
    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="need a model with `TransformerEncoder` blocks.*"
                                         "Sequential"):
        select_trainable(dense, "adapter")


def test_backbone_with_pieces_round_trips_through_keras_files(tmp_path):
    model = classifier("prefix", prefix_length=2)
    path = tmp_path / "prefix.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, compile=False)
    assert reloaded.backbone.peft == {"prefix_length": 2}
    np.testing.assert_allclose(np.asarray(reloaded(BATCH)), np.asarray(model(BATCH)),
                               atol=1e-6)
