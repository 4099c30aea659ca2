import keras
import numpy as np
import pytest

from keras_mapping.models import (
    ARCHITECTURES,
    BertBackbone,
    BertMaskedLM,
    BertNextSentencePredictor,
    BertPretrainer,
    BertTextClassifier,
    BertTokenClassifier,
)

VOCAB = 60
RNG = np.random.default_rng(7)


def tiny_backbone(**overrides):
    config = dict(vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=16,
                  intermediate_dim=32, max_sequence_length=32, dropout=0.0)
    return BertBackbone(**{**config, **overrides})


def batch(size=4, length=9, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, length + 1, size)
    lengths[0] = length
    mask = np.arange(length)[None, :] < lengths[:, None]
    token_ids = np.where(mask, rng.integers(5, VOCAB, (size, length)), 0)
    segment_ids = np.where(np.arange(length)[None, :] >= lengths[:, None] // 2, 1, 0) * mask
    return {"token_ids": token_ids.astype("int32"), "segment_ids": segment_ids.astype("int32"),
            "padding_mask": mask}


def test_backbone_output_shapes():
    outputs = tiny_backbone()(batch())
    assert outputs["sequence_output"].shape == (4, 9, 16)
    assert outputs["pooled_output"].shape == (4, 16)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_named_architectures(name):
    expected = ARCHITECTURES[name]
    backbone = BertBackbone.from_architecture(name, vocabulary_size=100, max_sequence_length=16)
    assert (backbone.num_layers, backbone.hidden_dim, backbone.num_heads,
            backbone.intermediate_dim) == (expected["num_layers"], expected["hidden_dim"],
                                           expected["num_heads"], expected["intermediate_dim"])
    assert len(backbone.encoder_layers) == expected["num_layers"]


def test_unknown_architecture():
    with pytest.raises(ValueError, match="Unknown architecture 'bert_huge'.*bert_base"):
        BertBackbone.from_architecture("bert_huge")


def test_changing_padded_token_ids_leaves_real_positions_unchanged():
    backbone = tiny_backbone()
    inputs = batch()
    changed = dict(inputs)
    changed["token_ids"] = np.where(inputs["padding_mask"], inputs["token_ids"],
                                    RNG.integers(1, VOCAB, inputs["token_ids"].shape))
    changed["segment_ids"] = np.where(inputs["padding_mask"], inputs["segment_ids"], 1)
    before = backbone.predict(inputs, verbose=0)
    after = backbone.predict(changed, verbose=0)
    mask = inputs["padding_mask"]
    np.testing.assert_allclose(after["sequence_output"][mask], before["sequence_output"][mask],
                               atol=1e-5)
    np.testing.assert_allclose(after["pooled_output"], before["pooled_output"], atol=1e-5)


def test_pooled_output_is_tanh_dense_over_cls():
    backbone = tiny_backbone()
    outputs = backbone.predict(batch(), verbose=0)
    dense = backbone.pooler_dense
    expected = np.tanh(outputs["sequence_output"][:, 0] @ np.asarray(dense.kernel)
                       + np.asarray(dense.bias))
    np.testing.assert_allclose(outputs["pooled_output"], expected, atol=1e-5)


def test_backbone_keras_round_trip(tmp_path):
    backbone = tiny_backbone(dropout=0.1)
    inputs = batch()
    backbone.save(tmp_path / "backbone.keras")
    reloaded = keras.saving.load_model(tmp_path / "backbone.keras")
    assert isinstance(reloaded, BertBackbone)
    assert reloaded.get_config() == backbone.get_config()
    for name, value in backbone.predict(inputs, verbose=0).items():
        np.testing.assert_allclose(reloaded.predict(inputs, verbose=0)[name], value, atol=1e-6)
    clone = BertBackbone.from_config(backbone.get_config())
    clone.set_weights(backbone.get_weights())
    np.testing.assert_allclose(clone.predict(inputs, verbose=0)["pooled_output"],
                               backbone.predict(inputs, verbose=0)["pooled_output"], atol=1e-6)


def test_backbone_jit_and_mixed_bfloat16():
    backbone = tiny_backbone()
    inputs = batch()
    eager = backbone.predict(inputs, verbose=0)
    backbone.compile(jit_compile=True)
    jitted = backbone.predict(inputs, verbose=0)
    np.testing.assert_allclose(jitted["sequence_output"], eager["sequence_output"], atol=1e-4)
    keras.config.set_dtype_policy("mixed_bfloat16")
    mixed = tiny_backbone()
    mixed.set_weights(backbone.get_weights())
    outputs = mixed.predict(inputs, verbose=0)
    assert outputs["sequence_output"].dtype == "bfloat16"
    assert all(w.dtype == "float32" for w in mixed.weights)
    np.testing.assert_allclose(np.asarray(outputs["sequence_output"], "float32"),
                               eager["sequence_output"], atol=0.1)


def test_freezing_embeddings_and_lowest_layers():
    backbone = tiny_backbone()
    classifier = BertTextClassifier(backbone, num_classes=2)
    total = len(classifier.trainable_weights)
    backbone.freeze(embeddings=True, num_layers=1)
    frozen = (len(backbone.embeddings.weights) + len(backbone.encoder_layers[0].weights))
    assert len(classifier.trainable_weights) == total - frozen
    count = sum(int(np.prod(w.shape)) for w in classifier.trainable_weights)
    assert count < classifier.count_params()
    backbone.freeze()
    assert len(classifier.trainable_weights) == total
    with pytest.raises(ValueError, match="between 0 and 2"):
        backbone.freeze(num_layers=3)


def test_frozen_layers_do_not_change_during_fit():
    backbone = tiny_backbone()
    classifier = BertTextClassifier(backbone, num_classes=2)
    backbone.freeze(embeddings=True, num_layers=1)
    classifier.compile(optimizer=keras.optimizers.Adam(1e-2))
    frozen_before = [np.array(w) for w in backbone.encoder_layers[0].weights]
    top_before = [np.array(w) for w in backbone.encoder_layers[1].weights]
    classifier.fit(batch(), np.array([0, 1, 0, 1]), epochs=2, verbose=0)
    for before, weight in zip(frozen_before, backbone.encoder_layers[0].weights):
        np.testing.assert_array_equal(before, np.asarray(weight))
    assert any(not np.allclose(b, np.asarray(w))
               for b, w in zip(top_before, backbone.encoder_layers[1].weights))


def test_classifier_loss_falls_with_fit():
    backbone = tiny_backbone()
    classifier = BertTextClassifier(backbone, num_classes=3, dropout=0.0)
    classifier.compile(optimizer=keras.optimizers.AdamW(3e-3))
    inputs = batch(size=32, seed=1)
    labels = inputs["token_ids"][:, 1] % 3  # learnable from the first word
    history = classifier.fit(inputs, labels, batch_size=8, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.6 * losses[0], losses


def test_classifier_round_trip(tmp_path):
    classifier = BertTextClassifier(tiny_backbone(), num_classes=4)
    inputs = batch()
    classifier.save(tmp_path / "classifier.keras")
    reloaded = keras.saving.load_model(tmp_path / "classifier.keras")
    assert reloaded.num_classes == 4
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0),
                               classifier.predict(inputs, verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match="num_classes"):
        BertTextClassifier(tiny_backbone(), num_classes=1)


def test_token_classifier_learns_tags_of_weighted_pieces_and_round_trips(tmp_path):
    tagger = BertTokenClassifier(tiny_backbone(), num_tags=3, dropout=0.0)
    assert not tagger.backbone.pooler_dense.trainable  # only the sequence output is read
    tagger.compile(optimizer=keras.optimizers.AdamW(3e-3))
    inputs = batch(size=32, seed=2)
    tags = inputs["token_ids"] % 3  # each piece's tag follows from its own id
    weights = inputs["padding_mask"].astype("float32")
    history = tagger.fit(inputs, tags, sample_weight=weights, batch_size=8, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.6 * losses[0], losses
    tagger.save(tmp_path / "tagger.keras")
    reloaded = keras.saving.load_model(tmp_path / "tagger.keras")
    assert reloaded.num_tags == 3
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0),
                               tagger.predict(inputs, verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match="num_tags"):
        BertTokenClassifier(tiny_backbone(), num_tags=1)


def mlm_batch():
    inputs = batch()
    inputs["mask_positions"] = np.array([[1, 2], [1, 3], [2, 1], [1, 1]], "int32")
    return inputs


def test_masked_lm_decoder_is_tied_to_word_embeddings(tmp_path):
    model = BertMaskedLM(tiny_backbone())
    inputs = mlm_batch()
    logits = model.predict(inputs, verbose=0)
    assert logits.shape == (4, 2, VOCAB)
    head = model.mlm_head
    sequence = model.backbone.predict(batch(), verbose=0)["sequence_output"]
    gathered = np.take_along_axis(sequence, inputs["mask_positions"][..., None], axis=1)
    transformed = np.asarray(head.layer_norm(head.transform_dense(gathered)))
    embeddings = np.asarray(model.backbone.token_embedding.embeddings)
    expected = transformed @ embeddings.T + np.asarray(head.output_bias)
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    # One variable, not a copy: no decoder kernel of its own.
    assert not any("decoder" in w.path for w in model.weights)
    model.save(tmp_path / "mlm.keras")
    reloaded = keras.saving.load_model(tmp_path / "mlm.keras")
    assert reloaded.mlm_head.token_embedding is reloaded.backbone.token_embedding
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0), logits, atol=1e-6)


def test_pretrainer_combines_losses_and_learns(tmp_path):
    model = BertPretrainer(tiny_backbone(), nsp_weight=0.5)
    model.compile(optimizer=keras.optimizers.AdamW(3e-3))
    inputs = mlm_batch()
    inputs = {k: np.repeat(v, 8, axis=0) for k, v in inputs.items()}
    mask_ids = np.take_along_axis(inputs["token_ids"], inputs["mask_positions"], axis=1)
    labels = {"mlm": mask_ids, "nsp": np.tile([0, 1, 0, 1], 8)}
    weights = {"mlm": np.ones_like(mask_ids, "float32"), "nsp": np.ones(32, "float32")}
    first = model.evaluate(inputs, labels, sample_weight=weights, verbose=0, return_dict=True)
    np.testing.assert_allclose(first["loss"], first["mlm_loss"] + 0.5 * first["nsp_loss"],
                               rtol=1e-4)
    history = model.fit(inputs, labels, sample_weight=weights, batch_size=8, epochs=6,
                        verbose=0)
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]
    model.save(tmp_path / "pretrainer.keras")
    reloaded = keras.saving.load_model(tmp_path / "pretrainer.keras")
    assert reloaded.nsp_weight == 0.5
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0)["nsp"],
                               model.predict(inputs, verbose=0)["nsp"], atol=1e-5)


def test_next_sentence_predictor_has_two_classes(tmp_path):
    model = BertNextSentencePredictor(tiny_backbone())
    assert model.predict(batch(), verbose=0).shape == (4, 2)
    model.save(tmp_path / "nsp.keras")
    assert keras.saving.load_model(tmp_path / "nsp.keras").num_classes == 2


def test_attention_scores_per_layer_ignore_padding():
    backbone = tiny_backbone()
    inputs = batch()
    scores = backbone.attention_scores(inputs)
    assert len(scores) == 2
    assert scores[0].shape == (4, 2, 9, 9)
    scores = np.asarray(scores[-1])
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    padded_keys = ~inputs["padding_mask"][:, None, None, :]
    assert np.all(np.where(padded_keys, scores, 0.0) == 0.0)


def test_mean_pooling_classifier_reads_the_masked_mean():
    backbone = tiny_backbone()
    classifier = BertTextClassifier(backbone, num_classes=3, dropout=0.0, pooling="mean")
    inputs = batch()
    sequence = np.asarray(backbone(inputs)["sequence_output"])
    weights = inputs["padding_mask"][..., None].astype("float32")
    mean = (sequence * weights).sum(1) / weights.sum(1)
    kernel, bias = classifier.output_dense.get_weights()
    np.testing.assert_allclose(classifier.predict(inputs, verbose=0), mean @ kernel + bias,
                               atol=1e-5)
    assert not backbone.pooler_dense.trainable


def test_mean_pooling_classifier_round_trip(tmp_path):
    classifier = BertTextClassifier(tiny_backbone(), num_classes=2, pooling="mean")
    path = tmp_path / "classifier.keras"
    classifier.save(path)
    restored = keras.saving.load_model(path)
    assert restored.pooling == "mean"
    np.testing.assert_allclose(restored.predict(batch(), verbose=0),
                               classifier.predict(batch(), verbose=0), atol=1e-6)


def test_classifier_rejects_unknown_pooling():
    with pytest.raises(ValueError, match="pooling"):
        BertTextClassifier(tiny_backbone(), num_classes=2, pooling="max")


def test_simcse_scores_views_against_each_other():
    from keras_mapping.models import BertSimCSE

    model = BertSimCSE(tiny_backbone(dropout=0.2), temperature=0.1)
    inputs = batch()
    quiet = np.asarray(model(inputs, training=False))
    # Without dropout the views coincide: the diagonal is 1 / temperature.
    np.testing.assert_allclose(np.diag(quiet), 10.0, rtol=1e-5)
    noisy = np.asarray(model(inputs, training=True))
    assert noisy.shape == (4, 4) and not np.allclose(np.diag(noisy), 10.0, rtol=1e-3)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    history = model.fit(inputs, np.arange(4), epochs=10, verbose=0).history["loss"]
    assert history[-1] < history[0]


def test_checkpoints_with_the_tanh_gelu_build_and_round_trip(tmp_path):
    """Configs with "gelu_new" map to our registered approximate GELU, which the encoder
    blocks must resolve by name (Keras' own lookup knows only Keras' names)."""
    backbone = tiny_backbone(activation="keras_mapping>gelu_approximate")
    inputs = batch()
    backbone.save(tmp_path / "backbone.keras")
    reloaded = keras.saving.load_model(tmp_path / "backbone.keras")
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0)["sequence_output"],
                               backbone.predict(inputs, verbose=0)["sequence_output"], atol=1e-6)
