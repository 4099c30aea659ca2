"""Rebuilding a fine-tuned model from its task weights file and its base preset.

The file format, the fingerprint and the copying of values live in
`keras_mapping.checkpoints.task_weights`; building the model again needs the model classes,
so it lives here, on the floor that owns them.
"""

from keras_mapping import models
from keras_mapping.checkpoints.task_weights import (assign_task_weights, base_fingerprint,
                                                    read_task_metadata)
from keras_mapping.models.bert.backbone import BertBackbone
from keras_mapping.models.image_classifier import IMAGE_ARCHITECTURES, image_backbone


def load_task_weights(path, base_preset=None):
    """Rebuilds a fine-tuned model from its task weights and its base preset.

    Args:
        path: a file written by `keras_mapping.checkpoints.task_weights.save_task_weights`.
        base_preset: where the base weights are; defaults to the preset recorded in the file.

    Raises:
        ValueError: the base's fingerprint differs from the one the task was trained on, or
            the file's variables do not fit the rebuilt model.
    """
    metadata = read_task_metadata(path)
    base_preset = base_preset or metadata["base_preset"]
    backbone = _base_backbone(path, metadata, base_preset)
    fingerprint = base_fingerprint(backbone)
    if fingerprint != metadata["base_fingerprint"]:
        raise ValueError(
            f"{path}: these task weights were trained on a base with fingerprint "
            f"{metadata['base_fingerprint']} ({metadata['base_preset']}), but "
            f"'{base_preset}' has fingerprint {fingerprint}; load them onto the same base.")
    # Any task class the models package exports, so new task heads need no change here.
    model = getattr(models, metadata["task_class"])(backbone, **metadata["task_config"])
    return assign_task_weights(model, path)


def _base_backbone(path, metadata, base_preset):
    """The backbone the task weights go on: BERT's, or an image backbone's for
    `ImageClassifier` weights (whose base must hold trained weights)."""
    if "image_size" not in metadata:
        return BertBackbone.from_preset(base_preset, peft=metadata["peft"])
    if base_preset in IMAGE_ARCHITECTURES:
        raise ValueError(
            f"{path}: trained from the random weights of '{base_preset}', which cannot be "
            "built again; load the model directory instead.")
    size = metadata["image_size"] or (None, None)  # None: a ResNet built for any size
    return image_backbone(base_preset, size, peft=metadata["peft"])
