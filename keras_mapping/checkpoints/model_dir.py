"""A fine-tuned classifier's directory: everything `evaluate`, `predict` and `export` need.

```
DIR/model.keras            the classifier (backbone + head), reloadable with keras.saving
DIR/vocab.txt              the tokenizer vocabulary
DIR/tokenizer_config.json  its settings (lowercase, accents, CJK)
DIR/labels.json            the label vocabulary (ids <-> raw labels <-> names)
DIR/training_config.json   the recipe that produced it
DIR/metrics.json           its validation metrics
DIR/task_weights.safetensors  only the weights fine-tuning trained, with the base preset's
                           name and fingerprint (see `keras_mapping.checkpoints.task_weights`)
```
`model.keras` is written last, each file atomically, so a directory with `model.keras` is
complete.
"""

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras

from keras_mapping.checkpoints.bert_layout import tokenizer_config
from keras_mapping.data.readers import LabelVocabulary

MODEL_FILE = "model.keras"
LABELS_FILE = "labels.json"
TRAINING_CONFIG_FILE = "training_config.json"
METRICS_FILE = "metrics.json"


def write_atomically(path, write):
    """Calls `write(temporary_path)`, syncs the file, then renames it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keep every suffix: Keras checks names such as ".weights.h5" and ".keras".
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent,
                                         suffix="".join(path.suffixes))
    os.close(handle)
    try:
        write(temporary)
        with open(temporary, "rb") as file:
            os.fsync(file.fileno())
        # mkstemp makes owner-only files; give the final one the usual umask permissions.
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask():
    current = os.umask(0)
    os.umask(current)
    return current


def write_text_atomically(path, text):
    write_atomically(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))


def write_json_atomically(path, value):
    write_text_atomically(path, json.dumps(value, indent=2) + "\n")


@dataclass
class ClassifierBundle:
    """A loaded model directory.

    Args:
        model: the `BertTextClassifier`.
        tokenizer: its `BertTokenizer`.
        labels: its `LabelVocabulary`.
        training_config: the recipe, as a dict.
        max_length: the sequence length it was trained with.
    """

    model: keras.Model
    tokenizer: object
    labels: LabelVocabulary
    training_config: dict
    max_length: int


def save_classifier(directory, model, tokenizer, labels, training_config, metrics):
    """Writes a model directory (see the module docstring)."""
    directory = Path(directory)
    write_text_atomically(directory / "vocab.txt", "\n".join(tokenizer.get_vocabulary()) + "\n")
    write_json_atomically(directory / "tokenizer_config.json", tokenizer_config(tokenizer))
    write_text_atomically(directory / LABELS_FILE, labels.to_json())
    write_json_atomically(directory / TRAINING_CONFIG_FILE, training_config)
    write_json_atomically(directory / METRICS_FILE, metrics)
    write_atomically(directory / MODEL_FILE, inference_copy(model).save)


def inference_copy(model):
    """A copy of a task model for inference: no optimizer state (which would triple the
    file's size) and float32 computation, whatever precision it was trained in. bf16
    results move by about 1e-3 with the batch's shape and the kernel chosen, so a float32
    copy is what lets every way of running it (predict, SavedModel, TFLite) agree."""
    config = model.get_config()
    config["backbone"]["config"]["dtype"] = "float32"
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        copy = model.__class__.from_config(config)
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(model.get_weights())
    return copy


def load_classifier(directory):
    """Loads a model directory written by `save_classifier`.

    Raises:
        FileNotFoundError: the directory or one of its files is missing.
    """
    from keras_mapping.tokenizers import BertTokenizer

    directory = Path(directory)
    missing = [name for name in (MODEL_FILE, "vocab.txt", LABELS_FILE, TRAINING_CONFIG_FILE)
               if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"'{directory}' is not a complete model directory: missing {', '.join(missing)} "
            "(written by `keras-mapping finetune --out DIR`).")
    config = json.loads((directory / TRAINING_CONFIG_FILE).read_text(encoding="utf-8"))
    model = keras.saving.load_model(directory / MODEL_FILE, compile=False)
    if model.backbone.embeddings.compute_dtype != "float32":  # saved before float32 copies
        model = inference_copy(model)
    return ClassifierBundle(
        model=model,
        tokenizer=BertTokenizer.from_preset(directory),
        labels=LabelVocabulary.from_json((directory / LABELS_FILE).read_text(encoding="utf-8")),
        training_config=config,
        max_length=config["max_length"],
    )
