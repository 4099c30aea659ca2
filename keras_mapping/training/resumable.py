"""Training that survives being killed: the whole training state is saved every few steps,
and `resumable_fit` starts again at the saved step.

Keras' `BackupAndRestore` resumes at epoch boundaries only, and does not save the dropout
random state. Here a checkpoint holds the weights, the optimizer's slots and step counter,
and the state of every `SeedGenerator` (dropout masks), so a resumed run with a fixed seed
retraces the uninterrupted one: the data pipeline is rebuilt and skipped to the saved step.
"""

import json
from pathlib import Path

import keras
import numpy as np

from keras_mapping.checkpoints.model_dir import write_atomically, write_json_atomically

PROGRESS_FILE = "progress.json"


def random_states(model):
    """The model's `SeedGenerator` states (variables that are not weights), in a fixed order."""
    weights = {id(variable) for variable in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


def saved_step(directory):
    """Training steps recorded by the latest complete checkpoint in `directory` (0 if none)."""
    progress = Path(directory) / PROGRESS_FILE
    if not progress.is_file():
        return 0
    return int(json.loads(progress.read_text())["step"])


def restore_checkpoint(model, directory):
    """Loads the latest checkpoint of `directory` into a compiled `model`.

    Returns:
        The number of training steps it had done (0, and nothing loaded, if none).
    """
    directory = Path(directory)
    step = saved_step(directory)
    if not step:
        return 0
    name = json.loads((directory / PROGRESS_FILE).read_text())["checkpoint"]
    with model.distribute_strategy.scope():  # optimizer slots mirrored like the weights
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(directory / f"{name}.weights.h5")
        with np.load(directory / f"{name}.random.npz") as saved:
            for index, variable in enumerate(random_states(model)):
                variable.assign(saved[f"state_{index}"])
    return step


class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves the training state every `every_steps` steps and at the end of each round.

    A checkpoint is a `step-N.weights.h5` (weights and optimizer) and a `step-N.random.npz`
    (dropout random states), each written atomically; `progress.json` is then pointed at it,
    and only then are older checkpoints removed, so a kill at any moment leaves a complete
    checkpoint. Saves within a round skip its last step: that one is saved at the round's end,
    after its validation and the callbacks before this one have run, so a round counts as
    done only when everything it owes is written.

    Args:
        directory: where checkpoints go.
        steps_per_round: steps of a round (a Keras epoch).
        every_steps: steps between two saves within a round; 0 saves at round ends only.
        initial_step: steps done before this `fit` started.
        save: False counts the steps and writes nothing (workers other than the chief).
    """

    def __init__(self, directory, steps_per_round, every_steps=0, initial_step=0, save=True):
        super().__init__()
        if every_steps < 0:
            raise ValueError(f"`every_steps` must be 0 or more, got {every_steps}.")
        self.directory = Path(directory)
        self.steps_per_round = steps_per_round
        self.every_steps = every_steps
        self.step = initial_step
        self.enabled = save

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if (self.every_steps and self.step % self.every_steps == 0
                and self.step % self.steps_per_round):
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.step = (epoch + 1) * self.steps_per_round
        self.save()

    def save(self):
        if not self.enabled:
            return
        name = f"step-{self.step}"
        write_atomically(self.directory / f"{name}.weights.h5", self.model.save_weights)
        states = {f"state_{index}": np.asarray(variable)
                  for index, variable in enumerate(random_states(self.model))}
        write_atomically(self.directory / f"{name}.random.npz",
                         lambda temporary: np.savez(temporary, **states))
        write_json_atomically(self.directory / PROGRESS_FILE,
                              {"step": self.step, "checkpoint": name})
        for path in self.directory.glob("step-*"):
            if not path.name.startswith(f"{name}."):
                path.unlink(missing_ok=True)


def resumable_fit(model, train_data_from, *, rounds, steps_per_round, directory,
                  checkpoint_every=0, callbacks=(), save=True, **fit_arguments):
    """`model.fit` over `rounds` rounds of `steps_per_round` steps that resumes where a killed
    run with the same `directory` left off, to the step.

    A run resumed mid-round first finishes that round (its logged training loss then averages
    the remaining steps only), then runs the rest.

    Args:
        model: a compiled model, built the same way as in the interrupted run.
        train_data_from: `train_data_from(step)` builds the training dataset from its
            `step`-th batch on, giving the batches the uninterrupted pipeline would. It must
            build a new pipeline each call: a second iteration of one shuffled dataset is
            shuffled anew.
        rounds: rounds (Keras epochs) of the whole run.
        steps_per_round: steps of each round.
        directory: the run's checkpoint directory.
        checkpoint_every: steps between checkpoints within a round (0: round ends only).
        callbacks: the run's other callbacks; the checkpoint runs after them.
        save: False resumes from `directory` but writes nothing to it (workers other than
            the chief of a multi-worker run).
        **fit_arguments: passed to `model.fit` (e.g. `validation_data`, `verbose`).

    Returns:
        The step the run resumed from (0 for a fresh run).

    Example:
    >>> import keras, numpy as np, tempfile, tensorflow as tf
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> data = tf.data.Dataset.from_tensors((np.ones((4, 2)), np.ones((4, 1)))).repeat()
    >>> resumable_fit(model, data.skip, rounds=2, steps_per_round=3,
    ...               directory=tempfile.mkdtemp(), verbose=0)
    0
    """
    initial_step = restore_checkpoint(model, directory)
    checkpoint = TrainingCheckpoint(directory, steps_per_round, checkpoint_every, initial_step,
                                    save=save)
    callbacks = [*callbacks, checkpoint]
    next_round, offset = divmod(initial_step, steps_per_round)
    if offset and next_round < rounds:
        model.fit(train_data_from(initial_step), initial_epoch=next_round, epochs=next_round + 1,
                  steps_per_epoch=steps_per_round - offset, callbacks=callbacks,
                  **fit_arguments)
        next_round += 1
        if model.stop_training:
            return initial_step
    if next_round < rounds:
        model.fit(train_data_from(next_round * steps_per_round), initial_epoch=next_round,
                  epochs=rounds, steps_per_epoch=steps_per_round, callbacks=callbacks,
                  **fit_arguments)
    return initial_step
