import numpy as np
import pytest

from keras_mapping.layers import MultiHeadAttention, TransformerEncoder
from keras_mapping.layers.peft import (LORA_TARGETS, AttentionPrefix, BottleneckAdapter,
                                       LowRankUpdate)
from tests.helpers import run_layer_test

RNG = np.random.default_rng(5)
X = RNG.normal(size=(2, 6, 16)).astype("float32")
MASK = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], bool)


def test_low_rank_update_contract(tmp_path):
    run_layer_test(LowRankUpdate, {"rank": 3, "output_shape": (4, 5), "alpha": 6.0,
                                   "dropout": 0.1, "input_axes": 1},
                   {"inputs": X}, (2, 6, 4, 5), tmp_path)


def test_bottleneck_adapter_contract(tmp_path):
    run_layer_test(BottleneckAdapter, {"bottleneck_dim": 4}, {"inputs": X}, (2, 6, 16),
                   tmp_path)


def test_attention_prefix_contract(tmp_path):
    heads = RNG.normal(size=(2, 6, 2, 8)).astype("float32")
    run_layer_test(AttentionPrefix, {"length": 3, "num_heads": 2, "head_dim": 8},
                   {"key": heads, "value": heads, "attention_mask": MASK[:, None, :]},
                   ((2, 9, 2, 8), (2, 9, 2, 8), (2, 1, 9)), tmp_path)


@pytest.mark.parametrize("options", [
    {"lora_rank": 2, "lora_targets": LORA_TARGETS, "lora_dropout": 0.1},
    {"adapter_dim": 4},
    {"prefix_length": 3},
], ids=["lora", "adapter", "prefix"])
def test_encoder_with_peft_pieces_contract(tmp_path, options):
    run_layer_test(TransformerEncoder, {"intermediate_dim": 32, "num_heads": 2, **options},
                   {"inputs": X, "padding_mask": MASK}, (2, 6, 16), tmp_path)


def copy_matching_weights(source, target):
    weights = {v.path.split("/", 1)[-1]: v for v in source.weights}
    for variable in target.weights:
        key = variable.path.split("/", 1)[-1]
        if key in weights:
            variable.assign(weights[key])


@pytest.mark.parametrize("options", [
    {"lora_rank": 2, "lora_targets": LORA_TARGETS}, {"adapter_dim": 4}], ids=["lora", "adapter"])
def test_zero_initialised_pieces_leave_the_block_unchanged(options):
    base = TransformerEncoder(intermediate_dim=32, num_heads=2, name="block")
    tuned = TransformerEncoder(intermediate_dim=32, num_heads=2, name="block", **options)
    expected = np.asarray(base(X, padding_mask=MASK))
    tuned(X, padding_mask=MASK)
    copy_matching_weights(base, tuned)
    assert len(tuned.weights) > len(base.weights)
    np.testing.assert_allclose(np.asarray(tuned(X, padding_mask=MASK)), expected, atol=1e-6)


def test_lora_update_merges_into_the_kernel_of_each_projection_shape():
    attention = MultiHeadAttention(num_heads=2, key_dim=8, lora_rank=3,
                                   lora_targets=("query", "attention_output"))
    attention(X, X)
    for update in attention.lora_updates.values():
        update.lora_b.assign(RNG.normal(size=update.lora_b.shape))
    unmerged = np.asarray(attention(X, X))
    for target, dense in (("query", attention.query_dense),
                          ("attention_output", attention.output_dense)):
        dense.kernel.assign(attention.lora_updates[target].merged_kernel(dense.kernel))
        attention.lora_updates[target].lora_b.assign(np.zeros(attention.lora_updates[
            target].lora_b.shape))
    np.testing.assert_allclose(np.asarray(attention(X, X)), unmerged, atol=1e-5)


def test_prefix_is_visible_to_every_query_and_padding_stays_hidden():
    attention = MultiHeadAttention(num_heads=2, key_dim=8, prefix_length=3)
    _, scores = attention(X, X, attention_mask=MASK[:, None, :], return_attention_scores=True)
    scores = np.asarray(scores)
    assert scores.shape == (2, 2, 6, 9)
    assert (scores[..., :3] > 0).all()
    np.testing.assert_array_equal(scores[0, :, :, 7:], 0.0)  # the two padded keys
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-6)


def test_prefix_does_not_leak_across_padding():
    encoder = TransformerEncoder(intermediate_dim=32, num_heads=2, prefix_length=4)
    short = X[:1, :4]
    padded = np.concatenate([short, RNG.normal(size=(1, 5, 16)).astype("float32")], axis=1)
    mask = np.array([[1] * 4 + [0] * 5], bool)
    expected = np.asarray(encoder(short, padding_mask=np.ones((1, 4), bool)))
    np.testing.assert_allclose(np.asarray(encoder(padded, padding_mask=mask))[:, :4],
                               expected, atol=1e-5)


def test_peft_sizes_must_be_positive_integers():
    with pytest.raises(ValueError, match="`rank` must be a positive integer, got 0"):
        LowRankUpdate(rank=0, output_shape=(4,))
    with pytest.raises(ValueError, match="`adapter_dim` must be a positive integer"):
        BottleneckAdapter(bottleneck_dim=-2)
    with pytest.raises(ValueError, match="`prefix_length` must be a positive integer"):
        AttentionPrefix(length=1.5, num_heads=2, head_dim=4)
    with pytest.raises(ValueError, match="`lora_targets` must be among"):
        TransformerEncoder(intermediate_dim=8, num_heads=2, lora_rank=2,
                           lora_targets=("query", "pooler"))
