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

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """This task on a pretrained backbone; the head starts from scratch.

        Args:
            preset: a preset name or a BERT-layout directory (see `BertBackbone.from_preset`).
            load_weights: False gives random backbone weights.
            **kwargs: the task's own arguments, e.g. `num_classes` for a classifier.
        """
        from keras_mapping.models.bert.backbone import BertBackbone

        return cls(BertBackbone.from_preset(preset, load_weights=load_weights), **kwargs)

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
