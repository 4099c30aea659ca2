"""Common ground of the models that put a task head on a backbone."""

import keras


class Task(keras.Model):
    """A functional model made of a backbone and a task head.

    Subclasses build their graph in `__init__` and list their own constructor arguments in
    `task_config()`; the backbone is serialized with them, so `.keras` files and
    `get_config()`/`from_config()` round-trip the whole model.
    """

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


def token_cross_entropy():
    """Cross-entropy on logits averaged over weighted target tokens only (padded prediction
    slots weigh 0 and do not dilute the mean)."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                      reduction="mean_with_sample_weight")
