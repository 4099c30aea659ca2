import keras
import numpy as np
import pytest

from keras_mapping.models import GPTBackbone, GPTCausalLM

VOCAB = 40


def tiny_lm(**overrides):
    sizes = dict(vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=16,
                 intermediate_dim=32, max_sequence_length=24, dropout=0.0)
    return GPTCausalLM(GPTBackbone(**{**sizes, **overrides}))


def inputs_of(ids):
    ids = np.asarray(ids, "int32")
    return {"token_ids": ids, "padding_mask": np.ones_like(ids, bool)}


def test_causal_mask_blocks_the_future():
    lm = tiny_lm()
    rng = np.random.default_rng(0)
    ids = rng.integers(1, VOCAB, (2, 10))
    changed = ids.copy()
    changed[:, 6:] = rng.integers(1, VOCAB, (2, 4))
    before = np.asarray(lm(inputs_of(ids)))
    after = np.asarray(lm(inputs_of(changed)))
    assert before.shape == (2, 10, VOCAB)
    np.testing.assert_allclose(before[:, :6], after[:, :6], atol=1e-5)
    assert not np.allclose(before[:, 6:], after[:, 6:], atol=1e-3)


def test_padding_does_not_change_real_positions():
    lm = tiny_lm()
    ids = np.array([[3, 4, 5, 6, 0, 0]], "int32")
    padded = np.asarray(lm({"token_ids": ids, "padding_mask": ids != 0}))
    trimmed = np.asarray(lm(inputs_of(ids[:, :4])))
    np.testing.assert_allclose(padded[:, :4], trimmed, atol=1e-5)


def test_output_projection_is_tied_to_the_embeddings():
    lm = tiny_lm()
    table = lm.backbone.token_embedding.embeddings
    assert sum(w is table for w in lm.weights) == 1
    hidden = np.asarray(lm.backbone(inputs_of([[1, 2, 3]])))
    np.testing.assert_allclose(np.asarray(lm(inputs_of([[1, 2, 3]]))),
                               hidden @ np.asarray(table).T, atol=1e-5)


def test_loss_falls_on_a_repeating_sequence():
    keras.utils.set_random_seed(0)
    lm = tiny_lm()
    lm.compile(optimizer=keras.optimizers.AdamW(5e-3))
    ids = np.tile(np.arange(1, 9), (32, 2))
    x, y = inputs_of(ids[:, :-1]), ids[:, 1:]
    history = lm.fit(x, y, sample_weight=np.ones(y.shape, "float32"), epochs=15,
                     batch_size=8, verbose=0).history["loss"]
    assert history[-1] < 0.3 * history[0]
    # Greedy generation continues the learnt cycle.
    assert lm.generate([1, 2, 3], max_new_tokens=5) == [1, 2, 3, 4, 5, 6, 7, 8]


def test_top_k_sampling_draws_only_from_the_top_k(monkeypatch):
    lm = tiny_lm()
    logits = np.linspace(0, 1, VOCAB)
    monkeypatch.setattr(lm, "next_token_logits", lambda tokens: logits)
    drawn = set(lm.generate([1], max_new_tokens=200, strategy="top_k", top_k=3, seed=0)[1:])
    assert drawn == {VOCAB - 1, VOCAB - 2, VOCAB - 3}
    same = lm.generate([1], max_new_tokens=20, strategy="top_k", top_k=3, seed=5)
    assert same == lm.generate([1], max_new_tokens=20, strategy="top_k", top_k=3, seed=5)
    assert lm.generate([1], max_new_tokens=10, end_token_id=VOCAB - 1) == [1, VOCAB - 1]


@pytest.mark.parametrize("arguments, message", [
    (dict(strategy="beam"), "strategy"), (dict(strategy="top_k", top_k=0), "top_k"),
    (dict(temperature=0.0), "temperature")])
def test_generation_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        tiny_lm().generate([1, 2], **arguments)


def test_round_trip(tmp_path):
    lm = tiny_lm()
    lm.save(tmp_path / "lm.keras")
    restored = keras.saving.load_model(tmp_path / "lm.keras")
    ids = inputs_of([[4, 5, 6]])
    np.testing.assert_allclose(np.asarray(restored(ids)), np.asarray(lm(ids)), atol=1e-6)
