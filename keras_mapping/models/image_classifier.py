"""An image classifier: class logits from any image backbone's pooled output."""

import keras

from keras_mapping.checkpoints import vision_layout
from keras_mapping.models.resnet import ResNetBackbone
from keras_mapping.models.task import Task, output_layers
from keras_mapping.models.vit import ViTBackbone

# The backbone class of each checkpoint family (`config.json`'s model_type).
BACKBONES = {"vit": ViTBackbone, "resnet": ResNetBackbone}


@keras.saving.register_keras_serializable(package="keras_mapping")
class ImageClassifier(Task):
    """Dropout and a dense layer over the backbone's `pooled_output`, returning float32
    class logits; `compile()` defaults to AdamW at 5e-5, sparse cross-entropy on logits and
    accuracy.

    The head is that of the reference classifiers: ViT's reads the class token after the
    final LayerNorm, ResNet's the spatial average of the last stage, so checkpoints of
    `ViTForImageClassification` and `ResNetForImageClassification` load with their heads.

    Args:
        backbone: a `ViTBackbone` or `ResNetBackbone` (any model with a `pooled_output`).
        num_classes: number of classes.
        dropout: dropout rate before the output layer (the reference heads have none).
        **kwargs: base `keras.Model` arguments.

    Example:
    >>> import numpy as np
    >>> from keras_mapping.models import ResNetBackbone
    >>> classifier = ImageClassifier(ResNetBackbone.from_architecture("resnet20"), 10)
    >>> tuple(classifier.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0).shape)
    (2, 10)
    """

    task_kind = "classification"

    def __init__(self, backbone, num_classes, dropout=0.0, **kwargs):
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"`num_classes` must be an integer >= 2, got {num_classes!r}.")
        self.backbone = backbone
        self.output_dropout, self.output_dense = output_layers(num_classes, dropout)
        inputs = backbone.input
        pooled = backbone(inputs)["pooled_output"]
        logits = self.output_dense(self.output_dropout(pooled))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        self.num_classes = num_classes
        self.dropout = dropout

    def task_config(self):
        return {"num_classes": self.num_classes, "dropout": self.dropout}

    @classmethod
    def from_preset(cls, preset, num_classes=None, load_weights=True, **kwargs):
        """A classifier built from a Hugging Face-layout directory (ViT or ResNet).

        The stored head loads when the file has one for `num_classes` classes; otherwise
        (a base model's file, another class count) the head starts from scratch.

        Args:
            preset: a directory holding `config.json` and `model.safetensors`.
            num_classes: number of classes; by default that of the stored head, or of
                `config.json`'s labels when weights are not loaded.
            load_weights: False gives random weights everywhere.
            **kwargs: the classifier's other arguments (`dropout`, `name`).
        """
        directory = vision_layout.resolve_directory(preset, need_weights=load_weights)
        family, arguments = vision_layout.read_config(directory)
        stored_classes = (vision_layout.head_classes(directory, family) if load_weights
                          else len(vision_layout.read_labels(directory) or []) or None)
        if num_classes is None:
            if stored_classes is None:
                raise ValueError(
                    f"{directory}: holds no classifier head; pass `num_classes`.")
            num_classes = stored_classes
        model = cls(BACKBONES[family](**arguments), num_classes, **kwargs)
        if load_weights:
            head = model.output_dense if stored_classes == num_classes else None
            vision_layout.load_weights(directory, family, model.backbone, head)
        return model

    def save_to_preset(self, directory, labels=None, overwrite=False):
        """Writes `config.json` and `model.safetensors` of the whole classifier
        (`ViTForImageClassification` or `ResNetForImageClassification`).

        Args:
            directory: destination folder; written atomically.
            labels: class names by class id, stored as `id2label` ("LABEL_<i>" by default).
            overwrite: replace an existing directory.
        """
        return vision_layout.save(directory, self.backbone.checkpoint_family, self.backbone,
                                  head=self.output_dense, labels=labels, overwrite=overwrite)
