"""`resumable_fit`: a run that dies mid-round resumes at its last checkpointed step and ends
where the uninterrupted run ends, dropout masks included."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_mapping.training import resumable
from keras_mapping.training.resumable import (PROGRESS_FILE, TrainingCheckpoint, random_states,
                                              resumable_fit, saved_step)
from tests.helpers import AtStep

ROUNDS, STEPS_PER_ROUND = 3, 5


def build_model():
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dropout(0.5), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    return model


def batches():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(64, 6)).astype("float32")
    targets = features.sum(axis=1, keepdims=True)
    return tf.data.Dataset.from_tensor_slices((features, targets)).shuffle(
        64, seed=1).batch(8).repeat()


def crash(model):
    raise KeyboardInterrupt  # as a killed process stops: no cleanup


def crash_after(at_step):
    return AtStep(at_step, crash)


def fit(directory, checkpoint_every, callbacks=()):
    model = build_model()
    resumed_at = resumable_fit(model, lambda step: batches().skip(step), rounds=ROUNDS,
                               steps_per_round=STEPS_PER_ROUND, directory=directory,
                               checkpoint_every=checkpoint_every, callbacks=callbacks,
                               verbose=0)
    return model, resumed_at


@pytest.mark.parametrize("crash_at, resumes_at", [(8, 6), (6, 5), (13, 12)])
def test_a_run_killed_mid_round_resumes_at_its_step_and_matches(tmp_path, crash_at,
                                                                resumes_at):
    straight, _ = fit(tmp_path / "straight", checkpoint_every=2)
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "killed", checkpoint_every=2, callbacks=[crash_after(crash_at)])
    # Saves every 2 steps within a round (not on a round's last step) and at round ends.
    assert saved_step(tmp_path / "killed") == resumes_at
    resumed, resumed_at = fit(tmp_path / "killed", checkpoint_every=2)
    assert resumed_at == resumes_at
    for a, b in zip(straight.get_weights() + straight.optimizer.variables,
                    resumed.get_weights() + resumed.optimizer.variables):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)
    for a, b in zip(random_states(straight), random_states(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_dropout_state_matters_so_the_check_above_can_fail(tmp_path, monkeypatch):
    straight, _ = fit(tmp_path / "straight", checkpoint_every=2)
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "killed", checkpoint_every=2, callbacks=[crash_after(8)])
    monkeypatch.setattr(resumable, "random_states", lambda model: [])
    resumed, resumed_at = fit(tmp_path / "killed", checkpoint_every=2)
    assert resumed_at == 6
    difference = max(float(np.abs(a - b).max())
                     for a, b in zip(straight.get_weights(), resumed.get_weights()))
    assert difference > 1e-4


def test_only_the_latest_complete_checkpoint_is_kept(tmp_path):
    fit(tmp_path, checkpoint_every=2)
    assert saved_step(tmp_path) == ROUNDS * STEPS_PER_ROUND
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        PROGRESS_FILE, "step-15.random.npz", "step-15.weights.h5"]


def test_a_finished_run_does_not_train_again(tmp_path):
    first, _ = fit(tmp_path, checkpoint_every=0)
    again, resumed_at = fit(tmp_path, checkpoint_every=0)
    assert resumed_at == ROUNDS * STEPS_PER_ROUND
    for a, b in zip(first.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_negative_checkpoint_interval_is_refused(tmp_path):
    with pytest.raises(ValueError, match="`every_steps` must be 0 or more, got -1"):
        TrainingCheckpoint(tmp_path, STEPS_PER_ROUND, every_steps=-1)
