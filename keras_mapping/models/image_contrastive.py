"""Self-supervised contrastive learning on images (SimCLR, Chen et al. 2020): two augmented
views of each image, the other images of the batch as negatives."""

import keras
from keras import ops

from keras_mapping.layers import CosineSimilarityLogits
from keras_mapping.models.task import Task


@keras.saving.register_keras_serializable(package="keras_mapping")
class SymmetricLogits(keras.layers.Layer):
    """Stacks `(batch, batch)` similarities over their transpose, `(2 * batch, batch)`:
    each first view picks its second view among the batch, and each second view its first
    (SimCLR's loss counts both directions)."""

    def call(self, logits):
        return ops.concatenate([logits, ops.transpose(logits)], axis=0)


@keras.saving.register_keras_serializable(package="keras_mapping")
class ImageSimCLR(Task):
    """Runs the backbone on two views of a batch of images, projects each pooled output
    through a two-layer MLP and scores every first view against every second view. Image
    i's correct "class" is column i in both directions, so the targets are `range(batch)`
    twice and the loss is sparse cross-entropy over the logits
    (`keras_mapping.data.image_views.contrastive_image_dataset` yields them). The projection
    is discarded after pretraining: the backbone is what transfers.

    Args:
        backbone: an image backbone (`ResNetBackbone`, `ViTBackbone`).
        projection_dim: output width of the projection MLP (its hidden width is the
            backbone's pooled width).
        temperature: softmax temperature of the cosine similarities.
        **kwargs: base `keras.Model` arguments.

    Example:
    >>> import numpy as np
    >>> from keras_mapping.models import ResNetBackbone
    >>> model = ImageSimCLR(ResNetBackbone.from_architecture("resnet20", image_size=8))
    >>> views = {"view_1": np.zeros((3, 8, 8, 3), "float32"),
    ...          "view_2": np.ones((3, 8, 8, 3), "float32")}
    >>> tuple(model.predict(views, verbose=0).shape)
    (6, 3)
    """

    task_kind = "contrastive"

    def __init__(self, backbone, projection_dim=128, temperature=0.2, **kwargs):
        self.backbone = backbone
        image_shape = tuple(backbone.input.shape[1:])
        inputs = {name: keras.Input(shape=image_shape, name=name)
                  for name in ("view_1", "view_2")}
        pooled = [backbone(inputs[name])["pooled_output"] for name in ("view_1", "view_2")]
        width = int(pooled[0].shape[-1])
        self.projection_hidden = keras.layers.Dense(width, activation="relu",
                                                    name="projection_hidden")
        self.projection_output = keras.layers.Dense(projection_dim, name="projection_output")
        projected = [self.projection_output(self.projection_hidden(view)) for view in pooled]
        self.similarity = CosineSimilarityLogits(temperature, name="similarity")
        logits = SymmetricLogits(name="both_directions")(self.similarity(*projected))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        self.projection_dim = projection_dim
        self.temperature = temperature

    def task_config(self):
        return {"projection_dim": self.projection_dim, "temperature": self.temperature}
