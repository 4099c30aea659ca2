"""Fine-tuned models of every task as artifacts that take raw text (or text pairs, or
encoded images for image models): a TF Serving SavedModel, a `.keras` archive and a TFLite
file (see each module), written so that a directory that looks complete is complete."""

import os
import shutil
import tempfile
from pathlib import Path

from keras_mapping.checkpoints.model_dir import LABELS_FILE
from keras_mapping.tasks.model_directory import TASK_FILE, load_model_directory

FORMATS = ("savedmodel", "keras", "tflite")


def export_model(model_dir, out, format="savedmodel", overwrite=False):
    """Exports a `finetune` model directory.

    Layouts: "savedmodel" writes `out/1/` (TF Serving's versioned layout; signatures
    `serving_default` on text and `serve_tokens` on token ids); "keras" writes
    `out/model.keras` (text in, probabilities out); "tflite" writes `out/model.tflite`.
    Image models: the SavedModel's `serving_default` takes encoded image bytes (and
    `serve_pixels` float pixels), the `.keras` model image bytes, the TFLite file float
    pixels in [0, 1] at the model's image size (TFLite cannot decode images).
    Each also gets the task (`out/task.json`: its columns, labels, thresholds) and, for
    tasks with labels, `out/labels.json`. Files are written into a
    temporary sibling folder that is renamed to `out` at the end.

    Args:
        model_dir: a directory written by `keras-mapping finetune`.
        out: the export directory.
        format: one of `FORMATS`.
        overwrite: replace an existing `out`.

    Returns:
        The path of the main artifact.

    Raises:
        ValueError: an unknown format, or a format the model's task cannot take.
        FileNotFoundError: `model_dir` is incomplete (no tokenizer vocabulary, no model).
        FileExistsError: `out` exists and `overwrite` is False.
    """
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {FORMATS}, got {format!r}.")
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"Export directory '{out}' already exists; choose another "
                              "--out or pass --overwrite.")
    bundle = load_model_directory(model_dir)
    if bundle.task.name == "token-classification" and format != "savedmodel":
        raise ValueError(
            f"'{model_dir}' is a token-classification model, which exports as "
            f"--format savedmodel only: its character offsets come from TensorFlow string "
            f"ops (regex splits with offsets, Unicode decoding) that TFLite runs only through "
            f"the Flex delegate, which the `tensorflow` wheel's interpreter lacks, and a "
            f".keras file cannot hold that tokenizer.")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        artifact = _write(bundle, staging, format)
        for name in (TASK_FILE, LABELS_FILE):
            if (Path(model_dir) / name).is_file():
                shutil.copyfile(Path(model_dir) / name, staging / name)
        _replace_directory(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out / artifact.relative_to(staging)


def _write(bundle, staging, format):
    # Each format's module is loaded when asked for: TFLite's pulls in the converter.
    if format == "savedmodel":
        from keras_mapping.export.saved_model import SERVING_VERSION, write_saved_model

        write_saved_model(bundle, staging / SERVING_VERSION)
        return staging / SERVING_VERSION
    if format == "keras":
        from keras_mapping.export.keras_archive import write_keras

        write_keras(bundle, staging / "model.keras")
        return staging / "model.keras"
    from keras_mapping.export.tflite import write_tflite

    write_tflite(bundle, staging / "model.tflite")
    return staging / "model.tflite"


def _replace_directory(staging, out):
    if not out.exists():
        os.replace(staging, out)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.replace(out, retired / "previous")
    os.replace(staging, out)
    shutil.rmtree(retired, ignore_errors=True)
