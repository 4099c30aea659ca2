"""Common ground of the models that put a head on a `BertBackbone`."""

from keras_mapping.models.bert.backbone import BertBackbone
from keras_mapping.models.task import Task


class BertTask(Task):
    """A `Task` on a `BertBackbone`, which can start from a pretrained preset."""

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """This task on a pretrained backbone; the head starts from scratch.

        Args:
            preset: a preset name or a BERT-layout directory (see `BertBackbone.from_preset`).
            load_weights: False gives random backbone weights.
            **kwargs: the task's own arguments, e.g. `num_classes` for a classifier.
        """
        return cls(BertBackbone.from_preset(preset, load_weights=load_weights), **kwargs)
