"""Files of run and model directories, written atomically, and the float32 inference copy
of a task model saved in them. (The model directory itself, for every task:
`keras_mapping.tasks.model_directory`.)"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import keras


MODEL_FILE = "model.keras"
LABELS_FILE = "labels.json"
TRAINING_CONFIG_FILE = "training_config.json"
METRICS_FILE = "metrics.json"
# An image model directory's copy of its model in the Hugging Face layout, which
# `finetune --preset DIR` starts from.
PRESET_DIR = "preset"


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


def write_directory_atomically(directory, fill, overwrite=False):
    """Writes a whole directory at once: `fill(staging)` writes the files into a temporary
    sibling folder, which is synced and renamed to `directory` only when complete, so a
    directory that exists is never half-written.

    Raises:
        FileExistsError: `directory` exists and `overwrite` is False.
    """
    directory = Path(directory)
    if directory.exists() and not overwrite:
        raise FileExistsError(f"'{directory}' already exists; pass overwrite=True to replace it.")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        fill(staging)
        for path in staging.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def read_config_file(path, expected=""):
    """The parsed JSON of a checkpoint's config file; errors name the file (and the JSON
    line), followed by `expected`, a sentence on the form wanted."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Config file '{path}' does not exist.{expected}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: line {error.lineno}: not valid JSON ({error.msg}).") from error


def write_text_atomically(path, text):
    write_atomically(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))


def write_json_atomically(path, value):
    write_text_atomically(path, json.dumps(value, indent=2) + "\n")


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
