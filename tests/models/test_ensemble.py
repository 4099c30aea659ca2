"""`EnsembleModel` averages its members' probabilities (or scores) and returns them in the
members' own terms, so the task's output activation gives the average back."""

import keras
import numpy as np
import pytest

from keras_mapping.models import BertTextClassifier, EnsembleModel
from keras_mapping.models.ensemble import average_outputs
from tests.models.test_bert import batch, tiny_backbone


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


OUTPUTS = [np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0]], "float32"),
           np.array([[-3.0, 4.0, 0.0], [1.0, -2.0, 40.0]], "float32")]


@pytest.mark.parametrize("activation, apply", [("softmax", softmax), ("sigmoid", sigmoid),
                                                ("linear", lambda x: x)])
def test_the_activation_of_the_average_is_the_average_of_the_activations(activation, apply):
    combined = np.asarray(average_outputs([keras.ops.convert_to_tensor(o) for o in OUTPUTS],
                                          activation))
    expected = (apply(OUTPUTS[0].astype("float64")) + apply(OUTPUTS[1].astype("float64"))) / 2
    np.testing.assert_allclose(apply(combined.astype("float64")), expected, atol=1e-6)


def test_a_class_every_member_rules_out_keeps_a_finite_output():
    ruled_out = [np.array([[0.0, -200.0]], "float32")] * 2
    for activation in ("softmax", "sigmoid"):
        combined = np.asarray(average_outputs(ruled_out, activation))
        assert np.isfinite(combined).all(), activation


def members(count=2, pooling="mean"):
    return [BertTextClassifier(tiny_backbone(), num_classes=3, dropout=0.0, pooling=pooling)
            for _ in range(count)]


def test_ensemble_predicts_the_mean_probability_and_round_trips_a_keras_file(tmp_path):
    models = members(3)
    features = batch()
    expected = np.mean([softmax(np.asarray(m(features), "float64")) for m in models], axis=0)
    ensemble = EnsembleModel(models, activation="softmax")
    np.testing.assert_allclose(softmax(np.asarray(ensemble(features), "float64")), expected,
                               atol=1e-6)
    assert [m.name for m in ensemble.members] == ["member_0", "member_1", "member_2"]
    path = tmp_path / "ensemble.keras"
    ensemble.save(path)
    reloaded = keras.saving.load_model(path, compile=False)
    assert isinstance(reloaded, EnsembleModel) and len(reloaded.members) == 3
    np.testing.assert_allclose(reloaded.predict(features, verbose=0),
                               ensemble.predict(features, verbose=0), atol=1e-6)


def test_ensemble_errors_name_the_problem():
    with pytest.raises(ValueError, match="at least two members, got 1"):
        EnsembleModel(members(1))
    with pytest.raises(ValueError, match="`activation` must be one of"):
        EnsembleModel(members(2), activation="tanh")
