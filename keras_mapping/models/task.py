"""Common ground of the models that put a task head on a backbone, and the compile defaults
of each kind of task, written once: `model.compile()` from Python and the CLI's runs train
with the same loss and metrics."""

import keras


def token_cross_entropy():
    """Cross-entropy on logits averaged over weighted target tokens only (padded prediction
    slots weigh 0 and do not dilute the mean)."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                      reduction="mean_with_sample_weight")


def output_layers(units, dropout):
    """The dropout and float32 dense layer every BERT head ends with (BERT's initializer);
    full-precision outputs keep losses and softmax exact under mixed policies."""
    return (keras.layers.Dropout(dropout, name="output_dropout"),
            keras.layers.Dense(units, dtype="float32", name="logits",
                               kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02)))


def sparse_logits_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def accuracy():
    return keras.metrics.SparseCategoricalAccuracy(name="accuracy")


@keras.saving.register_keras_serializable(package="keras_mapping")
class SigmoidF1Score(keras.metrics.F1Score):
    """Keras' F1 score on logits: the sigmoid comes first, so that a model can keep returning
    logits (the loss wants them) while F1 thresholds probabilities."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(y_true, keras.ops.sigmoid(y_pred), sample_weight)


# One entry per kind of task: the default learning rate of AdamW, the loss, the metrics and
# the metrics weighted by sample weights (masked-LM slots), each built fresh per compile.
COMPILE_DEFAULTS = {
    "classification": dict(learning_rate=5e-5, loss=sparse_logits_loss,
                           metrics=lambda: [accuracy()]),
    "regression": dict(learning_rate=5e-5, loss=keras.losses.MeanSquaredError,
                       metrics=lambda: [keras.metrics.MeanAbsoluteError(name="mae")]),
    "multi-label": dict(learning_rate=5e-5,
                        loss=lambda: keras.losses.BinaryCrossentropy(from_logits=True),
                        metrics=lambda: [SigmoidF1Score(average="micro", threshold=0.5,
                                                        name="micro_f1")]),
    "token-classification": dict(learning_rate=5e-5, loss=token_cross_entropy,
                                 weighted_metrics=lambda: [accuracy()]),
    "token-prediction": dict(learning_rate=1e-4, loss=token_cross_entropy,
                             weighted_metrics=lambda: [accuracy()]),
    "causal-lm": dict(learning_rate=5e-4, loss=token_cross_entropy,
                      weighted_metrics=lambda: [accuracy()]),
    "contrastive": dict(learning_rate=3e-5, loss=sparse_logits_loss,
                        metrics=lambda: [accuracy()]),
    "pretraining": dict(learning_rate=1e-4,
                        loss=lambda: {"mlm": token_cross_entropy(), "nsp": sparse_logits_loss()},
                        metrics=lambda: {"nsp": [accuracy()]},
                        weighted_metrics=lambda: {"mlm": [accuracy()]}),
}


class Task(keras.Model):
    """A functional model made of a backbone and a task head.

    Subclasses build their graph in `__init__`, list their own constructor arguments in
    `task_config()` and name their kind of task in `task_kind` (a key of
    `COMPILE_DEFAULTS`); the backbone is serialized with them, so `.keras` files and
    `get_config()`/`from_config()` round-trip the whole model.
    """

    task_kind = "classification"

    def compile(self, optimizer="auto", loss="auto", metrics="auto", weighted_metrics="auto",
                **kwargs):
        """`keras.Model.compile` with the defaults of the task's kind (`COMPILE_DEFAULTS`)
        for every argument left "auto": AdamW at the kind's learning rate, its loss and its
        metrics."""
        defaults = COMPILE_DEFAULTS[self.task_kind]

        def default(name, given):
            if given != "auto":
                return given
            return defaults[name]() if name in defaults else None

        metrics = default("metrics", metrics)
        for metric in keras.tree.flatten(metrics or []):
            if isinstance(metric, keras.metrics.FBetaScore) and not metric._built:
                # Its variables take the label count from the first batch, which would create
                # them inside the first trace of the training step: a `tf.function` that
                # creates variables is traced twice.
                metric._build(self.output.shape, self.output.shape)
        super().compile(
            optimizer=(keras.optimizers.AdamW(defaults["learning_rate"])
                       if optimizer == "auto" else optimizer),
            loss=default("loss", loss), metrics=metrics,
            weighted_metrics=default("weighted_metrics", weighted_metrics), **kwargs)

    def task_config(self):
        """Constructor arguments of the subclass other than `backbone`."""
        return {}

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            **self.task_config(),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
