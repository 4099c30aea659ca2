import keras
import numpy as np
import pytest

from keras_mapping.layers import MultiHeadAttention
from keras_mapping.layers.tensorflow_kernels import onednn_enabled
from tests.helpers import ops_after_graph_optimization, run_layer_test

RNG = np.random.default_rng(0)
QUERY = RNG.normal(size=(3, 5, 16)).astype("float32")
VALUE = RNG.normal(size=(3, 7, 16)).astype("float32")
VALUE_MASK = np.ones((3, 7), bool)
VALUE_MASK[0, 4:] = False
VALUE_MASK[1, 2:] = False


def paired_layers(**kwargs):
    """Our layer and Keras' own, holding the same weights."""
    ours = MultiHeadAttention(num_heads=4, key_dim=8, **kwargs)
    reference = keras.layers.MultiHeadAttention(num_heads=4, key_dim=8, **kwargs)
    ours(QUERY, VALUE)
    reference(QUERY, VALUE)
    ours.set_weights(reference.get_weights())
    return ours, reference


def test_layer_contract(tmp_path):
    run_layer_test(
        MultiHeadAttention,
        {"num_heads": 2, "key_dim": 4, "value_dim": 6, "output_dim": 10},
        {"query": QUERY, "value": VALUE},
        (3, 5, 10),
        tmp_path,
    )


def test_returns_scores_per_head():
    output, scores = MultiHeadAttention(num_heads=4, key_dim=8)(
        QUERY, VALUE, return_attention_scores=True)
    assert output.shape == (3, 5, 16)
    assert scores.shape == (3, 4, 5, 7)
    np.testing.assert_allclose(np.sum(scores, axis=-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("return_scores", [False, True])
@pytest.mark.parametrize(
    "masking",
    ["none", "value_mask", "attention_mask", "causal", "causal_and_value_mask"],
)
def test_matches_keras_multi_head_attention(masking, return_scores):
    ours, reference = paired_layers()
    query = value = QUERY if masking.startswith("causal") else None
    query, value = (QUERY, QUERY) if query is not None else (QUERY, VALUE)
    kwargs = {"return_attention_scores": return_scores}
    if masking in ("value_mask", "causal_and_value_mask"):
        kwargs["value_mask"] = VALUE_MASK[:, : value.shape[1]]
    if masking == "attention_mask":
        kwargs["attention_mask"] = RNG.random((3, 5, 7)) > 0.3
        kwargs["attention_mask"][..., 0] = True  # every query sees a key
    if masking.startswith("causal"):
        kwargs["use_causal_mask"] = True
    if masking == "causal_and_value_mask":
        kwargs["value_mask"][:, 0] = True  # keep a visible key in every causal row
    expected = reference(query, value, **kwargs)
    actual = ours(query, value, **kwargs)
    for a, e in zip(keras.tree.flatten(actual), keras.tree.flatten(expected)):
        assert np.max(np.abs(np.asarray(a) - np.asarray(e))) <= 1e-5


def test_implicit_keras_masks_match_keras():
    """Masks attached by an Embedding(mask_zero=True) are honoured like Keras does."""
    ids = np.array([[3, 4, 5, 0, 0], [6, 7, 8, 9, 1]])
    embedding = keras.layers.Embedding(10, 16, mask_zero=True)
    ours, reference = paired_layers()
    real_rows = ids != 0
    # Keras' layer strips the mask from its inputs, so each call gets freshly embedded ones.
    x = embedding(ids)
    expected = np.asarray(reference(x, x))[real_rows]
    x = embedding(ids)
    actual = np.asarray(ours(x, x))[real_rows]
    assert np.max(np.abs(actual - expected)) <= 1e-5


def test_values_at_masked_positions_do_not_matter():
    layer = MultiHeadAttention(num_heads=2, key_dim=8)
    changed = VALUE.copy()
    changed[~VALUE_MASK] = 1e3
    before = layer(QUERY, VALUE, value_mask=VALUE_MASK)
    after = layer(QUERY, changed, value_mask=VALUE_MASK)
    np.testing.assert_allclose(after, before, atol=1e-5)


@pytest.mark.parametrize("return_scores", [False, True])
def test_fully_masked_rows_are_finite_and_zero_context(return_scores):
    layer = MultiHeadAttention(num_heads=2, key_dim=8)
    mask = np.ones((3, 5, 7), bool)
    mask[0, 1, :] = False
    mask[2] = False
    result = layer(QUERY, VALUE, attention_mask=mask, return_attention_scores=return_scores)
    output = np.asarray(keras.tree.flatten(result)[0])
    assert np.isfinite(output).all()
    bias = np.asarray(layer.output_dense.bias)
    np.testing.assert_allclose(output[0, 1], bias, atol=1e-6)
    np.testing.assert_allclose(output[2], np.broadcast_to(bias, (5, 16)), atol=1e-6)


def test_dropout_only_in_training():
    layer = MultiHeadAttention(num_heads=2, key_dim=8, dropout=0.5, seed=1)
    inference = layer(QUERY, VALUE, training=False)
    np.testing.assert_allclose(layer(QUERY, VALUE, training=False), inference)
    assert not np.allclose(layer(QUERY, VALUE, training=True), inference)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_heads"):
        MultiHeadAttention(num_heads=0, key_dim=4)
    with pytest.raises(ValueError, match="dropout"):
        MultiHeadAttention(num_heads=1, key_dim=4, dropout=1.5)


def test_weight_gradients_match_keras():
    """The projections run as 2-D matmuls; their gradients must still be Keras' einsums'."""
    import tensorflow as tf

    ours, reference = paired_layers()
    upstream = RNG.normal(size=(3, 5, 16)).astype("float32")
    gradients = []
    for layer in (ours, reference):
        with tf.GradientTape() as tape:
            output = layer(QUERY, VALUE, value_mask=VALUE_MASK)
            loss = tf.reduce_sum(output * upstream)
        gradients.append(tape.gradient(loss, layer.trainable_weights))
    for actual, expected in zip(*gradients):
        np.testing.assert_allclose(actual, expected, atol=1e-4)


def test_fully_masked_rows_have_zero_context_under_dropout():
    layer = MultiHeadAttention(num_heads=2, key_dim=8, dropout=0.5, seed=3)
    mask = np.ones((3, 5, 7), bool)
    mask[0, 1, :] = False
    output = np.asarray(layer(QUERY, VALUE, attention_mask=mask, training=True))
    np.testing.assert_allclose(output[0, 1], np.asarray(layer.output_dense.bias), atol=1e-6)


def test_quantized_projections_are_called_as_they_are():
    layer = MultiHeadAttention(num_heads=2, key_dim=8)
    before = np.asarray(layer(QUERY, VALUE))
    for projection in (layer.query_dense, layer.key_dense, layer.value_dense,
                       layer.output_dense):
        projection.quantize("int8")
    after = np.asarray(layer(QUERY, VALUE))
    assert not np.array_equal(after, before)  # the int8 kernels are in use
    np.testing.assert_allclose(after, before, atol=0.05)


@pytest.mark.parametrize("path", ["dot_product_attention", "einsums", "onednn"])
def test_every_inference_path_matches_keras(monkeypatch, path):
    """`ops.dot_product_attention` (other backends), the einsums (TensorFlow without
    oneDNN) and the form oneDNN fuses (TensorFlow with it)."""
    import keras_mapping.layers.attention as attention

    monkeypatch.setattr(attention, "FUSED_ATTENTION", path == "dot_product_attention")
    monkeypatch.setattr(attention, "ONEDNN_FUSES_ATTENTION_LOGITS", path == "onednn")
    ours, reference = paired_layers()
    mask = VALUE_MASK.copy()
    mask[2] = False  # a batch row whose queries see no key
    expected = np.asarray(reference(QUERY, VALUE, value_mask=mask))
    actual = np.asarray(ours(QUERY, VALUE, value_mask=mask))
    np.testing.assert_allclose(actual[:2], expected[:2], atol=1e-5)
    np.testing.assert_allclose(actual[2], np.broadcast_to(
        np.asarray(ours.output_dense.bias), actual[2].shape), atol=1e-6)


@pytest.mark.skipif(not onednn_enabled(), reason="the fusion is TensorFlow's oneDNN remapper's")
@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_inference_scales_and_masks_inside_the_matmul(policy):
    """In inference the scale and the mask are the first matmul's post-ops, not passes over
    the logits; training keeps the einsums, whose intermediates its gradient reads."""
    import tensorflow as tf

    keras.config.set_dtype_policy(policy)
    try:
        layer = MultiHeadAttention(num_heads=4, key_dim=8, dropout=0.1)
        query, value = (tf.cast(x, layer.compute_dtype) for x in (QUERY, VALUE))
        layer(query, value)
        inference = ops_after_graph_optimization(
            lambda q, v: layer(q, v, value_mask=VALUE_MASK, training=False), query, value)
        training = ops_after_graph_optimization(
            lambda q, v: layer(q, v, value_mask=VALUE_MASK, training=True), query, value)
    finally:
        keras.config.set_dtype_policy("float32")
    assert "_MklFusedBatchMatMulV2" in inference
    assert "_MklFusedBatchMatMulV2" not in training


def test_a_bfloat16_softmax_is_kept_only_where_it_sums_in_float32():
    """Under bf16 the attention's softmax stays in bf16 only where the backend's kernel
    rounds once from float32 (TensorFlow with oneDNN): there it must equal the float32
    softmax cast to bf16, masked positions included."""
    import keras_mapping.layers.attention as attention

    logits = RNG.normal(scale=4.0, size=(4, 3, 9, 33)).astype("float32")
    logits[..., 20:] = -1e9
    bf16 = keras.ops.cast(logits, "bfloat16")
    in_float32 = keras.ops.cast(keras.ops.softmax(keras.ops.cast(bf16, "float32")), "bfloat16")
    in_bfloat16 = keras.ops.softmax(bf16)
    if attention.SOFTMAX_OF_BFLOAT16_IN_FLOAT32:
        np.testing.assert_array_equal(np.asarray(keras.ops.cast(in_bfloat16, "float32")),
                                      np.asarray(keras.ops.cast(in_float32, "float32")))


def test_bfloat16_inference_stays_near_float32():
    ours, _ = paired_layers()
    expected = np.asarray(ours(QUERY, VALUE, value_mask=VALUE_MASK))
    keras.config.set_dtype_policy("mixed_bfloat16")
    half = MultiHeadAttention(num_heads=4, key_dim=8)
    half(QUERY, VALUE)
    half.set_weights(ours.get_weights())
    actual = np.asarray(keras.ops.cast(half(QUERY, VALUE, value_mask=VALUE_MASK), "float32"))
    np.testing.assert_allclose(actual, expected, atol=0.05)
