import keras
import numpy as np
import pytest

from keras_mapping.layers import BatchNormalization, LayerNormalization
from keras_mapping.layers.tensorflow_kernels import onednn_enabled
from tests.helpers import ops_after_graph_optimization, run_layer_test

RNG = np.random.default_rng(5)
X = (RNG.normal(size=(2, 6, 16)) * 3 + 1).astype("float32")
BATCH = (RNG.normal(size=(4, 64, 16)) * 3 + 1).astype("float32")  # 256 rows: fused


def test_contract(tmp_path):
    run_layer_test(LayerNormalization, {"epsilon": 1e-12}, {"inputs": X}, (2, 6, 16), tmp_path)


def layer_norm_pair(shape):
    """Ours and Keras' LayerNormalization with the same random gamma and beta."""
    ours = LayerNormalization(epsilon=1e-12)
    reference = keras.layers.LayerNormalization(epsilon=1e-12)
    for layer in (ours, reference):
        layer.build(shape)
    weights = [RNG.normal(size=shape[-1:]).astype("float32") * 0.5 + 1,
               RNG.normal(size=shape[-1:]).astype("float32")]
    ours.set_weights(weights)
    reference.set_weights(weights)
    return ours, reference


def float64_layer_norm(layer, x):
    x = x.astype("float64")
    mean, variance = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return ((x - mean) / np.sqrt(variance + layer.epsilon) * np.asarray(layer.gamma)
            + np.asarray(layer.beta))


@pytest.mark.parametrize("static_shape", [True, False])
@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("inputs", [X, BATCH], ids=["12 rows", "256 rows"])
def test_inference_in_a_graph_gives_keras_results(inputs, rank, static_shape):
    """Static shapes matter: constant folding would otherwise change the graph's form."""
    import tensorflow as tf

    x = inputs if rank == 3 else inputs.reshape(-1, inputs.shape[-1])
    ours, reference = layer_norm_pair(x.shape)
    shape = x.shape if static_shape else (None,) * (rank - 1) + x.shape[-1:]
    inference = tf.function(lambda x: ours(x, training=False),
                            input_signature=[tf.TensorSpec(shape, "float32")])
    np.testing.assert_allclose(inference(x), reference(x), atol=1e-5)
    np.testing.assert_allclose(ours(x, training=True), reference(x), atol=1e-6)
    np.testing.assert_allclose(ours(x), float64_layer_norm(ours, x), atol=1e-5)  # eagerly


@pytest.mark.skipif(not onednn_enabled(), reason="the fusion is TensorFlow's oneDNN remapper's")
@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_inference_runs_one_fused_kernel_and_training_keeps_keras_form(policy):
    import tensorflow as tf

    keras.config.set_dtype_policy(policy)
    try:
        ours, _ = layer_norm_pair(BATCH.shape)
        x = tf.cast(BATCH, ours.compute_dtype)  # as the layers before it hand it over
        inference = ops_after_graph_optimization(lambda x: ours(x, training=False), x)
        training = ops_after_graph_optimization(lambda x: ours(x, training=True), x)
        output = tf.function(lambda x: ours(x, training=False))(x)
    finally:
        keras.config.set_dtype_policy("float32")
    assert "_MklLayerNorm" in inference
    assert not {op for op in inference if "BatchNorm" in op or op == "Mean"}
    assert "Mean" in training and "_MklLayerNorm" not in training
    # From bf16 inputs gamma and beta are applied in bf16: measured 0.014 here, Keras'
    # float32 computation 0.012 and an unbiased variance 0.11 (outputs up to 5.8).
    atol = 1e-5 if policy == "float32" else 0.03
    np.testing.assert_allclose(np.asarray(tf.cast(output, "float32")),
                               float64_layer_norm(ours, BATCH), atol=atol)


@pytest.mark.skipif(not onednn_enabled(), reason="the fusion is TensorFlow's oneDNN remapper's")
def test_few_rows_keep_keras_form_and_unknown_sizes_decide_per_call():
    """One request of a few tokens is faster in Keras' form than in the fused kernel."""
    import tensorflow as tf

    ours, _ = layer_norm_pair(X.shape)
    few = ops_after_graph_optimization(lambda x: ours(x, training=False), X)
    assert "Mean" in few and "_MklLayerNorm" not in few
    unknown = tf.TensorSpec((None, None, X.shape[-1]), "float32")
    both = ops_after_graph_optimization(
        tf.function(lambda x: ours(x, training=False), input_signature=[unknown]), X)
    assert {"Mean", "_MklLayerNorm"} <= both


# -- BatchNormalization --------------------------------------------------------------------
BN_RNG = np.random.default_rng(7)  # LayerNorm's tests keep their own draws
MAPS = (BN_RNG.normal(size=(6, 5, 5, 8)) * 2 - 1).astype("float32")  # NHWC feature maps


def test_batch_norm_contract(tmp_path):
    run_layer_test(BatchNormalization, {"momentum": 0.9, "epsilon": 1e-5},
                   {"inputs": MAPS}, MAPS.shape, tmp_path)


def batch_norm_pair(shape, policy="float32", **kwargs):
    """Ours and Keras' BatchNormalization with the same random weights and statistics."""
    ours = BatchNormalization(momentum=0.9, epsilon=1e-5, dtype=policy, **kwargs)
    reference = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, dtype=policy,
                                                **kwargs)
    for layer in (ours, reference):
        layer.build(shape)
    channels = shape[-1]
    weights = [BN_RNG.normal(size=channels).astype("float32") * 0.5 + 1,
               BN_RNG.normal(size=channels).astype("float32"),
               BN_RNG.normal(size=channels).astype("float32"),
               BN_RNG.uniform(0.5, 2.0, size=channels).astype("float32")]
    if not (kwargs.get("scale", True) and kwargs.get("center", True)):
        del weights[1]  # one of gamma and beta is absent
    ours.set_weights(weights)
    reference.set_weights(weights)
    return ours, reference


def step_results(layer, x, training):
    """Outputs, and the gradients of a weighted sum of them with respect to the inputs and
    the trainable weights, of one call in a graph; the layer's moving statistics after it.
    (The weights vary within each channel: with one weight a channel the true gradients of
    the inputs and of gamma in training are zero, and both sides give only rounding.)"""
    import tensorflow as tf

    x = tf.constant(x)
    weighting = tf.constant(np.random.default_rng(3).normal(size=x.shape).astype("float32"))

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.cast(layer(x, training=training), tf.float32)
            loss = tf.reduce_sum(y * weighting)
        return y, tape.gradient(loss, [x, *layer.trainable_variables])

    y, gradients = step(x)
    return [np.asarray(y), *(np.asarray(g) for g in gradients),
            *(np.asarray(w) for w in layer.non_trainable_weights)]


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gives_keras_results_gradients_and_moving_statistics(training):
    ours, reference = batch_norm_pair(MAPS.shape)
    for _ in range(2):  # the second step starts from updated moving statistics
        got, expected = step_results(ours, MAPS, training), step_results(reference, MAPS,
                                                                         training)
    for value, wanted in zip(got, expected, strict=True):
        np.testing.assert_allclose(value, wanted, rtol=1e-5, atol=2e-5)


def test_batch_norm_in_mixed_bfloat16_stays_within_bfloat16_rounding():
    import tensorflow as tf

    ours, reference = batch_norm_pair(MAPS.shape, "mixed_bfloat16")
    x = tf.cast(MAPS, tf.bfloat16)  # as the convolution before it hands it over
    got, expected = step_results(ours, x, True), step_results(reference, x, True)
    scale = [max(1.0, float(np.abs(w).max())) for w in expected]
    for value, wanted, size in zip(got, expected, scale, strict=True):
        np.testing.assert_allclose(value, wanted, atol=0.02 * size)


@pytest.mark.parametrize("kwargs", [{"scale": False}, {"center": False}], ids=str)
def test_batch_norm_without_scale_or_offset(kwargs):
    ours, reference = batch_norm_pair(MAPS.shape, **kwargs)
    for training in (True, False):
        np.testing.assert_allclose(ours(MAPS, training=training),
                                   reference(MAPS, training=training), atol=2e-5)


def test_frozen_batch_norm_uses_and_keeps_its_moving_statistics():
    ours, reference = batch_norm_pair(MAPS.shape)
    ours.trainable = reference.trainable = False
    before = [np.asarray(w) for w in ours.non_trainable_weights]
    np.testing.assert_allclose(ours(MAPS, training=True), reference(MAPS, training=False),
                               atol=2e-5)
    for value, wanted in zip(ours.non_trainable_weights, before, strict=True):
        np.testing.assert_array_equal(np.asarray(value), wanted)


@pytest.mark.parametrize("inputs", [MAPS.reshape(6, 25, 8), MAPS.reshape(-1, 8)],
                         ids=["rank 3", "rank 2"])
def test_batch_norm_of_other_ranks_takes_keras_form(inputs):
    ours, reference = batch_norm_pair(inputs.shape)
    fused = ops_after_graph_optimization(lambda x: ours(x, training=True), inputs)
    assert "Mean" in fused and not {op for op in fused if "FusedBatchNorm" in op}
    np.testing.assert_allclose(ours(inputs, training=True),
                               reference(inputs, training=True), atol=2e-5)


def test_batch_norm_trains_and_predicts_with_the_fused_kernel():
    """What makes it fast: no moments and elementwise passes, forward or backward."""
    import tensorflow as tf

    ours, _ = batch_norm_pair(MAPS.shape)

    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(ours(x, training=True) ** 2)
        return tape.gradient(loss, x)

    x = tf.constant(MAPS)
    training = ops_after_graph_optimization(gradient, x)
    inference = ops_after_graph_optimization(lambda x: ours(x, training=False), x)
    for ops in (training, inference):
        assert {op for op in ops if "FusedBatchNorm" in op}, ops
        assert not {"Mean", "SquaredDifference", "Rsqrt"} & ops, ops
    assert {op for op in training if "FusedBatchNormGrad" in op}, training
