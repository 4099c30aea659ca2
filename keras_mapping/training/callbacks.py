"""Callbacks of the training recipes: keeping the best weights across restarts, and stopping
cleanly on a non-finite loss."""

import json
import math
from pathlib import Path

import keras

from keras_mapping.checkpoints.model_dir import write_atomically, write_json_atomically


class BestWeights(keras.callbacks.Callback):
    """Saves the weights whenever `monitor` improves at the end of a round.

    Unlike `keras.callbacks.ModelCheckpoint(save_best_only=True)`, the best value so far is
    stored beside the weights, so a resumed run does not overwrite better weights with worse.
    Files are written atomically.

    Args:
        path: where the weights go (must end in ".weights.h5").
        monitor: the logged metric to maximize.
    """

    def __init__(self, path, monitor="val_accuracy"):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.state_path = self.path.with_name(self.path.name + ".json")
        self.best = -math.inf
        self.best_round = None

    def on_train_begin(self, logs=None):
        if self.state_path.is_file() and self.path.is_file():
            state = json.loads(self.state_path.read_text())
            self.best, self.best_round = state["best"], state["round"]

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not value > self.best:
            return
        self.best, self.best_round = float(value), epoch + 1
        write_atomically(self.path, self.model.save_weights)
        write_json_atomically(self.state_path, {"best": self.best, "round": self.best_round,
                                                "monitor": self.monitor})

    def restore(self, model):
        """Loads the best weights into `model` (no-op when no round finished)."""
        if self.path.is_file():
            model.load_weights(self.path)


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises `FloatingPointError` as soon as the training loss is NaN or infinite, naming the
    step and the last good checkpoint, which is left untouched.

    Args:
        best: the run's `BestWeights`, to name its file in the message.
    """

    def __init__(self, best=None):
        super().__init__()
        self.best = best
        self.step = 0

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True
            where = "no checkpoint was written yet"
            if self.best is not None and self.best.path.is_file():
                where = (f"the last good weights are in {self.best.path} (round "
                         f"{self.best.best_round})")
            raise FloatingPointError(
                f"Training loss became {float(loss)} at step {self.step} of this run; {where}.")
