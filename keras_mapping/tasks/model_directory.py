"""A fine-tuned model's directory: everything `evaluate`, `predict`, `export` and `plot`
need, for every task.

```
DIR/model.keras            the task model (backbone + head), reloadable with keras.saving
DIR/vocab.txt              the tokenizer vocabulary (text tasks; image models have none)
DIR/tokenizer_config.json  its settings (lowercase, accents, CJK)
DIR/task.json              the task: its name, the columns it reads, its labels (and
                           thresholds); `keras_mapping.tasks.task_from_config` rebuilds it
DIR/labels.json            the label names (tasks with labels), for other tools
DIR/training_config.json   the recipe that produced it
DIR/metrics.json           its validation metrics
DIR/task_weights.safetensors  only the weights fine-tuning trained (written by `finetune`)
DIR/preset/                the fine-tuned weights as a preset that `finetune --preset DIR`
                           starts from: text models' encoder in the BERT layout with the
                           tokenizer (for a second task, e.g. RTE after STS-B), image
                           models' classifier in the Hugging Face layout with its
                           preprocessing; not after adapters or prefixes, which those
                           layouts have no place for, nor for ensembles
```
`model.keras` is written last, each file atomically, so a directory with `model.keras` is
complete.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import keras

from keras_mapping.checkpoints.bert_layout import tokenizer_config
from keras_mapping.checkpoints.model_dir import (LABELS_FILE, METRICS_FILE, MODEL_FILE,
                                                 PRESET_DIR, TRAINING_CONFIG_FILE,
                                                 inference_copy,
                                                 write_atomically, write_json_atomically,
                                                 write_text_atomically)
from keras_mapping.data.layout import Columns
from keras_mapping.data.readers import LabelVocabulary
from keras_mapping.models.ensemble import EnsembleModel
from keras_mapping.tasks.classification import ClassificationTask
from keras_mapping.tasks.datasets import task_from_config
from keras_mapping.tokenizers import BertTokenizer

TASK_FILE = "task.json"


@dataclass
class ModelBundle:
    """A loaded model directory.

    Args:
        model: the task model (float32).
        tokenizer: its `BertTokenizer` (None for image models).
        task: its task (`keras_mapping.tasks.base.TextTask`).
        training_config: the recipe, as a dict.
        max_length: the sequence length it was trained with (None for image models).
    """

    model: keras.Model
    tokenizer: object
    task: object
    training_config: dict
    max_length: int

    @property
    def labels(self):
        """The `LabelVocabulary` of a classification model."""
        return self.task.vocabulary


def save_model_directory(directory, model, tokenizer, task, training_config, metrics):
    """Writes a model directory (see the module docstring); `model.keras` comes last.
    `tokenizer` is None for tasks on images."""
    directory = Path(directory)
    if tokenizer is not None:
        write_text_atomically(directory / "vocab.txt",
                              "\n".join(tokenizer.get_vocabulary()) + "\n")
        write_json_atomically(directory / "tokenizer_config.json", tokenizer_config(tokenizer))
    write_json_atomically(directory / TASK_FILE, task.config())
    if task.label_names is not None:
        write_text_atomically(directory / LABELS_FILE,
                              LabelVocabulary.from_names(task.label_names).to_json())
    write_json_atomically(directory / TRAINING_CONFIG_FILE, training_config)
    write_json_atomically(directory / METRICS_FILE, metrics)
    if _layout_holds(training_config):
        _save_preset(directory / PRESET_DIR, model, tokenizer, task)
    # An ensemble's members are float32 already: they were loaded from model directories.
    saved = model if isinstance(model, EnsembleModel) else inference_copy(model)
    write_atomically(directory / MODEL_FILE, saved.save)


def _save_preset(directory, model, tokenizer, task):
    """The fine-tuned backbone as a preset that `finetune --preset` starts from: the image
    classifier in the Hugging Face layout, with its preprocessing; a text model's encoder
    in the BERT layout, with its tokenizer (the task head stays out: a new task gets a new
    one)."""
    if task.modality == "image":
        model.save_to_preset(directory, labels=task.label_names,
                             preprocessing=task.preprocessor_config(), overwrite=True)
    else:
        model.backbone.save_to_preset(directory, tokenizer=tokenizer, overwrite=True)


def _layout_holds(training_config):
    """Whether the Hugging Face layout holds every weight of a model trained by this recipe
    (LoRA is merged before saving; adapters, prefixes and an ensemble's several backbones
    have no place there)."""
    return training_config.get("method", "full") not in ("adapter", "prefix", "ensemble")


def _read_json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def read_task(directory):
    """The task of a model directory, without loading the model."""
    directory = Path(directory)
    return _task(directory, _read_json(directory / TRAINING_CONFIG_FILE))


def _task(directory, training_config):
    if (directory / TASK_FILE).is_file():
        return task_from_config(_read_json(directory / TASK_FILE))
    # Directories written before task.json held text classifiers only.
    columns = Columns(training_config.get("text_column") or "sentence", None,
                      training_config.get("label_column") or "label")
    return ClassificationTask(columns, LabelVocabulary.from_json(
        (directory / LABELS_FILE).read_text(encoding="utf-8")))


def load_model_directory(directory):
    """Loads a model directory written by `save_model_directory`.

    Raises:
        FileNotFoundError: the directory or one of its files is missing.
    """
    directory = Path(directory)
    needed = (MODEL_FILE, TRAINING_CONFIG_FILE)
    missing = [name for name in needed if not (directory / name).is_file()]
    if not (directory / TASK_FILE).is_file() and not (directory / LABELS_FILE).is_file():
        missing.append(TASK_FILE)
    config = task = None
    if not missing:
        config = _read_json(directory / TRAINING_CONFIG_FILE)
        task = _task(directory, config)
        if task.modality == "text" and not (directory / "vocab.txt").is_file():
            missing.append("vocab.txt")
    if missing:
        raise FileNotFoundError(
            f"'{directory}' is not a complete model directory: missing {', '.join(missing)} "
            "(written by `keras-mapping finetune --out DIR`).")
    model = keras.saving.load_model(directory / MODEL_FILE, compile=False)
    # Directories saved before float32 copies hold mixed-precision models; an ensemble's
    # members were float32 when it was made.
    if (not isinstance(model, EnsembleModel)
            and model.backbone.embeddings.compute_dtype != "float32"):
        model = inference_copy(model)
    tokenizer = BertTokenizer.from_preset(directory) if task.modality == "text" else None
    return ModelBundle(model=model, tokenizer=tokenizer, task=task, training_config=config,
                       max_length=config.get("max_length"))
