import keras
import numpy as np
import pytest

from keras_mapping.models import BertBackbone, BertTextClassifier
from keras_mapping.training import LayerwiseAdamW, WarmupDecay, create_optimizer
from keras_mapping.training.optimizers import layerwise_factors


def tiny_classifier():
    backbone = BertBackbone(vocabulary_size=50, num_layers=3, num_heads=2, hidden_dim=8,
                            intermediate_dim=16, max_sequence_length=16)
    return BertTextClassifier(backbone, num_classes=2)


@pytest.mark.parametrize("decay", ["linear", "cosine"])
def test_warmup_then_decay(decay):
    schedule = WarmupDecay(1.0, total_steps=110, warmup_steps=10, decay=decay)
    values = [float(schedule(step)) for step in range(0, 130)]
    np.testing.assert_allclose(values[:11], np.linspace(0, 1, 11), atol=1e-6)
    assert values[60] == pytest.approx(0.5, abs=1e-6)  # halfway through the decay
    assert values[110] == pytest.approx(0.0, abs=1e-6) and values[129] == values[110]
    assert all(a >= b for a, b in zip(values[10:], values[11:]))
    restored = WarmupDecay.from_config(schedule.get_config())
    assert float(restored(37)) == pytest.approx(float(schedule(37)))


def test_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="decay"):
        WarmupDecay(1.0, 10, decay="step")
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupDecay(1.0, 10, warmup_steps=20)


def test_no_weight_decay_on_layer_norm_and_biases():
    model = tiny_classifier()
    optimizer = create_optimizer(1e-3, total_steps=10)
    decayed = {v.path for v in model.trainable_variables if optimizer._use_weight_decay(v)}
    assert decayed, "kernels and embeddings decay"
    for variable in model.trainable_variables:
        excluded = variable.name in ("bias", "gamma", "beta")
        assert (variable.path not in decayed) == excluded, variable.path


def test_layerwise_factors_fall_towards_the_input():
    model = tiny_classifier()
    factors = layerwise_factors(model, 0.5, num_layers=3)
    assert factors["encoder_layer_2/attention/query/kernel"] == 1.0
    assert factors["encoder_layer_1/output_dense/kernel"] == 0.5
    assert factors["encoder_layer_0/attention_layer_norm/gamma"] == 0.25
    assert factors["embeddings/token_embedding/embeddings"] == 0.125
    assert factors["logits/kernel"] == 1.0


def test_layerwise_adamw_scales_each_variable_step():
    first, second = keras.Variable(np.ones(3), name="a"), keras.Variable(np.ones(3), name="b")
    optimizer = LayerwiseAdamW(factors={second.path: 0.1}, learning_rate=0.01,
                               weight_decay=0.0)
    optimizer.apply([np.ones(3), np.ones(3)], [first, second])
    step_first = 1 - np.asarray(first)
    step_second = 1 - np.asarray(second)
    np.testing.assert_allclose(step_second, 0.1 * step_first, rtol=1e-4)
    restored = LayerwiseAdamW.from_config(optimizer.get_config())
    assert restored.factors == {second.path: 0.1}


def test_create_optimizer_validates():
    with pytest.raises(ValueError, match="learning_rate"):
        create_optimizer(0, total_steps=10)
    with pytest.raises(ValueError, match="needs the `model`"):
        create_optimizer(1e-3, total_steps=10, layerwise_decay=0.9)
    assert isinstance(create_optimizer(1e-3, 10, layerwise_decay=0.9, model=tiny_classifier(),
                                       num_layers=3), LayerwiseAdamW)


def test_global_norm_clipping_sees_repeated_embedding_rows_summed():
    # An embedding lookup's gradient repeats a row per occurrence of a token; its norm is
    # that of the rows summed (here row 1: [2, 2], norm 2*sqrt(2)), not of each copy.
    import tensorflow as tf

    from keras_mapping.training.optimizers import AdamW

    table = keras.Variable(np.zeros((3, 2)), name="table")
    sparse = tf.IndexedSlices(tf.ones((2, 2)), tf.constant([1, 1]), tf.constant([3, 2]))
    optimizer = AdamW(learning_rate=0.1, global_clipnorm=1.0)
    clipped = optimizer._clip_gradients([sparse])[0]
    np.testing.assert_allclose(np.asarray(clipped), [[0, 0], [0.5**0.5, 0.5**0.5], [0, 0]],
                               rtol=1e-6)
    assert float(tf.norm(clipped)) == pytest.approx(1.0)
    optimizer.apply([sparse], [table])  # and the update takes the dense gradient
    assert np.abs(np.asarray(table)[1]).max() > 0 and not np.asarray(table)[[0, 2]].any()
