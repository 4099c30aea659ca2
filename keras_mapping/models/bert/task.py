"""Common ground of the models that put a head on a `BertBackbone`."""

import keras


class BertTask(keras.Model):
    """A functional model made of a `BertBackbone` and a task head.

    Subclasses build their graph in `__init__` and list their own constructor arguments in
    `task_config()`; the backbone is serialized with them so `.keras` files and
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


def sparse_logits_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
