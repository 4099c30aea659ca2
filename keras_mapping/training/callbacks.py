"""Callbacks of the training recipes: keeping the best weights across restarts, and stopping
cleanly on a non-finite loss."""

import json
import math
from pathlib import Path

import keras

from keras_mapping.checkpoints.model_dir import write_atomically, write_json_atomically
from keras_mapping.training.distribute import predict_on_this_worker


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


class GradualUnfreezing(keras.callbacks.Callback):
    """Unfreezes a BERT backbone from the top down, one encoder block every few rounds.

    Round 0 trains the head, the pooler and the top encoder block; every `rounds_per_layer`
    rounds the next block below joins, down to `min_frozen_layers`, and after the lowest
    block the embeddings, unless `freeze_embeddings` (or frozen blocks lie between). Keras builds an optimizer for the variables it first sees,
    so call `build_optimizer(model)` after `compile` and before `fit`: it creates the
    optimizer's slots for every variable that will ever train. The round's setting is applied
    at the start of each round (also when a killed run resumes midway), and the
    train step is traced anew for the new set of trainable weights.

    Args:
        backbone: the `BertBackbone` inside the model being fitted.
        rounds_per_layer: rounds (Keras epochs) between two unfreezing steps.
        min_frozen_layers: encoder blocks, counted from the input side, that never train.
        freeze_embeddings: keep the embeddings frozen throughout.

    Example:
    >>> from keras_mapping.models import BertBackbone, BertTextClassifier
    >>> backbone = BertBackbone.from_architecture("bert_tiny", vocabulary_size=100)
    >>> unfreezing = GradualUnfreezing(backbone, rounds_per_layer=1)
    >>> unfreezing.frozen_layers(0), unfreezing.frozen_layers(1), unfreezing.frozen_layers(5)
    (1, 0, 0)
    """

    def __init__(self, backbone, rounds_per_layer=1, min_frozen_layers=0,
                 freeze_embeddings=True):
        super().__init__()
        if rounds_per_layer < 1:
            raise ValueError(f"`rounds_per_layer` must be at least 1, got {rounds_per_layer}.")
        if not 0 <= min_frozen_layers < backbone.num_layers:
            raise ValueError(f"`min_frozen_layers` must be between 0 and "
                             f"{backbone.num_layers - 1}, got {min_frozen_layers}.")
        self.backbone = backbone
        self.rounds_per_layer = rounds_per_layer
        self.min_frozen_layers = min_frozen_layers
        self.freeze_embeddings = freeze_embeddings

    def _steps(self, round_index):
        return round_index // self.rounds_per_layer

    def frozen_layers(self, round_index):
        """Encoder blocks frozen during round `round_index` (0-based)."""
        return max(self.min_frozen_layers, self.backbone.num_layers - 1 - self._steps(round_index))

    def embeddings_frozen(self, round_index):
        """Whether the embeddings are frozen during round `round_index`: they join only
        after every encoder block trains."""
        return (self.freeze_embeddings or self.min_frozen_layers > 0
                or self._steps(round_index) < self.backbone.num_layers)

    def apply(self, round_index):
        self.backbone.freeze(embeddings=self.embeddings_frozen(round_index),
                             num_layers=self.frozen_layers(round_index))

    def build_optimizer(self, model):
        """Builds `model.optimizer` over every variable this schedule ever trains, then
        applies round 0."""
        self.backbone.freeze(embeddings=self.freeze_embeddings,
                             num_layers=self.min_frozen_layers)
        model.optimizer.build(model.trainable_variables)
        self.apply(0)

    def on_epoch_begin(self, epoch, logs=None):
        before = [layer.trainable for layer in self.backbone.encoder_layers]
        embeddings_before = self.backbone.embeddings.trainable
        self.apply(epoch)
        after = [layer.trainable for layer in self.backbone.encoder_layers]
        if after != before or self.backbone.embeddings.trainable != embeddings_before:
            self.model.make_train_function(force=True)


class TaskValidation(keras.callbacks.Callback):
    """Scores the validation split at the end of every round with the task's own metrics,
    exactly as `evaluate` reports them (over the whole split, not averaged per batch), and
    adds them to the round's logs as `val_<name>` (`val_accuracy`, `val_spearman`,
    `val_micro_f1`, `val_loss`, ...). Put it before the callbacks that read them (best
    weights, early stopping, the CSV log).

    Args:
        task: the run's task (`keras_mapping.tasks`).
        data: the validation batches, in the order of `examples`.
        examples: the validation examples.
    """

    def __init__(self, task, data, examples):
        super().__init__()
        self.task, self.data, self.examples = task, data, examples

    def on_epoch_end(self, epoch, logs=None):
        report = self.task.report(predict_on_this_worker(self.model, self.data),
                                  self.examples)
        if logs is not None:
            logs.update({f"val_{name}": value for name, value in report.items()
                         if isinstance(value, float)})
