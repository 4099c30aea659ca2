"""A fine-tuning run's own weights in a small file, applied back onto its base preset.

`task_weights.safetensors` holds only the variables the method trained (adapters, LoRA
updates, prefixes, biases, LayerNorms and the task head) and, in its metadata, the base
preset, a fingerprint of the base weights, the method's settings and the task head's
arguments. `keras_mapping.models.task_weights.load_task_weights` builds the base model again,
checks the fingerprint so a file is never applied to weights it was not trained on, and
copies the task's variables in with `assign_task_weights`. Rebuilding lives with the models:
this floor works only on models it is given, so it never imports `keras_mapping.models`.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
from keras import ops
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

from keras_mapping.checkpoints import vision_layout
from keras_mapping.checkpoints.bert_layout import weight_map
from keras_mapping.checkpoints.model_dir import write_atomically

TASK_WEIGHTS_FILE = "task_weights.safetensors"
METADATA_KEY = "keras_mapping_task"


def base_fingerprint(backbone):
    """A short SHA-256 of the backbone's pretrained weights (the tensors of its checkpoint
    layout: BERT's, or ViT's or ResNet's for image backbones; pieces added for fine-tuning
    excluded): equal fingerprints mean equal bases."""
    family = getattr(backbone, "checkpoint_family", None)
    mapping = (vision_layout.FAMILIES[family].weight_map(backbone)
               if family in vision_layout.FAMILIES else weight_map(backbone))
    digest = hashlib.sha256()
    for name, entry in sorted(mapping.items()):
        variable_getter = entry[0]
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(
            ops.convert_to_numpy(variable_getter()), dtype="<f4").tobytes())
    return digest.hexdigest()[:16]


def save_task_weights(path, model, base_preset, fingerprint, method, peft):
    """Writes `model`'s trainable variables (and BatchNorm running statistics) and the
    metadata to rebuild it (atomically).

    Args:
        path: destination file.
        model: the fine-tuned task model (a `BertTextClassifier`).
        base_preset: the preset name or directory the backbone started from.
        fingerprint: `base_fingerprint` of the backbone before training.
        method: the fine-tuning method.
        peft: the backbone's `peft` options.
    """
    # BatchNorm's running statistics are not trainable but change with training (ResNets).
    statistics = [v for v in model.non_trainable_weights
                  if v.path.rsplit("/", 1)[-1] in ("moving_mean", "moving_variance")]
    tensors = {v.path: np.asarray(ops.convert_to_numpy(v), "float32")
               for v in [*model.trainable_weights, *statistics]}
    metadata = {"base_preset": str(base_preset), "base_fingerprint": fingerprint,
                "method": method, "peft": peft, "task_class": type(model).__name__,
                "task_config": model.task_config()}
    if getattr(model.backbone, "checkpoint_family", None) in vision_layout.FAMILIES:
        size = model.backbone.image_size  # what an image backbone was built for
        metadata["image_size"] = (None if size is None else
                                  [size, size] if isinstance(size, int) else list(size))
    write_atomically(path, lambda temporary: save_file(
        tensors, temporary, metadata={METADATA_KEY: json.dumps(metadata)}))


def read_task_metadata(path):
    """The metadata of a task weights file.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: it is not a task weights file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Task weights file '{path}' does not exist.")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = (handle.metadata() or {}).get(METADATA_KEY)
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{path}: not a readable safetensors file: {error}") from error
    if metadata is None:
        raise ValueError(f"{path}: not a keras-mapping task weights file (no "
                         f"'{METADATA_KEY}' metadata).")
    return json.loads(metadata)


def assign_task_weights(model, path):
    """Copies the tensors of a task weights file into `model`, variable by variable.

    Args:
        model: a task model built like the one that was saved (same class, arguments, base
            and `peft` options), e.g. by `keras_mapping.models.task_weights.load_task_weights`.
        path: a file written by `save_task_weights`.

    Returns:
        `model`, with the file's values.

    Raises:
        ValueError: the file is not a task weights file, holds a variable `model` lacks, or
            one whose shape differs from the model's.
    """
    metadata = read_task_metadata(path)
    tensors = load_file(str(path))
    variables = {v.path: v for v in model.weights}
    # Check every name and shape before assigning, so a file that does not fit leaves the
    # model as it was.
    unknown = sorted(set(tensors) - set(variables))
    if unknown:
        raise ValueError(f"{path}: variables {unknown[:3]} do not exist in the rebuilt "
                         f"{metadata['task_class']} (method {metadata['method']}).")
    for name, value in tensors.items():
        if tuple(variables[name].shape) != value.shape:
            raise ValueError(f"{path}: variable '{name}' has shape {value.shape}, the model "
                             f"needs {tuple(variables[name].shape)}.")
    for name, value in tensors.items():
        variables[name].assign(value)
    return model
