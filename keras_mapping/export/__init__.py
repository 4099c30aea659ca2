"""Fine-tuned models of every task as artifacts that take raw text (or text pairs, or
encoded images for image models): a TF Serving SavedModel, a `.keras` archive and a TFLite
file (see each module), written so that a directory that looks complete is complete."""

import json
import os
import shutil
import tempfile
from pathlib import Path

from keras_mapping.checkpoints.model_dir import LABELS_FILE
from keras_mapping.tasks.model_directory import TASK_FILE, load_model_directory

FORMATS = ("savedmodel", "keras", "tflite")
QUANTIZATIONS = ("int8", "float16")
# What `quantize` each format takes, for the errors.
_SUPPORTED = ("--format tflite takes --quantize int8 or float16 (text and image models); "
              "--format savedmodel takes --quantize int8 (text classification, regression "
              "and multi-label models)")


def export_model(model_dir, out, format="savedmodel", overwrite=False, quantize=None):
    """Exports a `finetune` model directory.

    Layouts: "savedmodel" writes `out/1/` (TF Serving's versioned layout; signatures
    `serving_default` on text and `serve_tokens` on token ids); "keras" writes
    `out/model.keras` (text in, probabilities out); "tflite" writes `out/model.tflite`.
    Image models: the SavedModel's `serving_default` takes encoded image bytes (and
    `serve_pixels` float pixels), the `.keras` model image bytes, the TFLite file float
    pixels in [0, 1] at the model's image size (TFLite cannot decode images).
    Each also gets the task (`out/task.json`: its columns, labels, thresholds) and, for
    tasks with labels, `out/labels.json`; the exported `task.json` also records the export
    (`"export": {"format": ..., "quantization": ...}`). Files are written into a
    temporary sibling folder that is renamed to `out` at the end.

    Args:
        model_dir: a directory written by `keras-mapping finetune`.
        out: the export directory.
        format: one of `FORMATS`.
        overwrite: replace an existing `out`.
        quantize: None, or one of `QUANTIZATIONS`: "tflite" takes "int8" (the converter's
            dynamic-range quantization) and "float16" (float16 weights); "savedmodel" takes
            "int8" for text models other than token classification (Keras' own
            `model.quantize("int8")`: int8 Dense, EinsumDense and Embedding weights, int8
            matmuls on activations quantized on the fly). "keras" takes none (see
            `check_quantization`).

    Returns:
        The path of the main artifact.

    Raises:
        ValueError: an unknown format or quantization, or a format or quantization the
            model's task cannot take.
        FileNotFoundError: `model_dir` is incomplete (no tokenizer vocabulary, no model).
        FileExistsError: `out` exists and `overwrite` is False.
    """
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {FORMATS}, got {format!r}.")
    check_quantization(format, quantize)
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
    check_quantization(format, quantize, bundle.task)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        artifact = _write(bundle, staging, format, quantize)
        if (Path(model_dir) / LABELS_FILE).is_file():
            shutil.copyfile(Path(model_dir) / LABELS_FILE, staging / LABELS_FILE)
        if (Path(model_dir) / TASK_FILE).is_file():
            task = json.loads((Path(model_dir) / TASK_FILE).read_text(encoding="utf-8"))
            task["export"] = {"format": format, "quantization": quantize}
            (staging / TASK_FILE).write_text(json.dumps(task, indent=2) + "\n",
                                             encoding="utf-8")
        _replace_directory(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out / artifact.relative_to(staging)


def check_quantization(format, quantize, task=None):
    """Raises a ValueError naming the format when `format` (for `task`, when given) cannot
    be exported with `quantize` (None always can).

    Why the refusals (measured with Keras 3.15 / TensorFlow 2.21):
    - "keras": a `.keras` archive of a `model.quantize("int8")` model saves, but does not
      load back: our backbones rebuild their sublayers from their own settings as float
      layers, which then find no float weights in the file.
    - "savedmodel" + "float16": Keras has no float16 weight quantization (its modes are
      int8, int4, float8, GPTQ, AWQ); float16 weights are TFLite's converter option.
    - "savedmodel" + "int8" on image models: Keras quantizes Dense, EinsumDense and
      Embedding layers only, so a ResNet's convolutions would stay float32 (and ViTs are
      not measured); they take `--format tflite` instead. On token classification: not
      measured on tagging (and token classification takes no TFLite export at all).
    """
    if quantize is None:
        return
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"`quantize` must be None or one of {QUANTIZATIONS}, got "
                         f"{quantize!r}.")
    if format == "keras":
        raise ValueError(
            "--quantize does not apply to --format keras: a .keras archive of a model "
            "quantized by Keras (model.quantize) saves but does not load back, since our "
            "backbones rebuild their layers as float layers; " + _SUPPORTED + ".")
    if format == "savedmodel" and quantize != "int8":
        raise ValueError(
            f"--quantize {quantize} does not apply to --format savedmodel: Keras' "
            f"quantization has no float16 weight mode; " + _SUPPORTED + ".")
    if format == "savedmodel" and task is not None and (
            task.modality == "image" or task.name == "token-classification"):
        why = ("Keras' int8 quantization covers Dense, EinsumDense and Embedding layers "
               "only, so a ResNet's convolutions would stay float32, and it is not "
               "measured on image models" if task.modality == "image" else
               "its effect on tagging is not measured")
        raise ValueError(f"--quantize int8 does not apply to --format savedmodel for "
                         f"{task.name} models ({why}); " + _SUPPORTED + ".")


def artifact_bytes(path):
    """The size of an artifact in bytes: a file's, or the sum of a directory's files."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def _write(bundle, staging, format, quantize=None):
    # Each format's module is loaded when asked for: TFLite's pulls in the converter.
    if format == "savedmodel":
        from keras_mapping.export.saved_model import SERVING_VERSION, write_saved_model

        write_saved_model(bundle, staging / SERVING_VERSION, quantize=quantize)
        return staging / SERVING_VERSION
    if format == "keras":
        from keras_mapping.export.keras_archive import write_keras

        write_keras(bundle, staging / "model.keras")
        return staging / "model.keras"
    from keras_mapping.export.tflite import write_tflite

    write_tflite(bundle, staging / "model.tflite", quantize=quantize)
    return staging / "model.tflite"


def _replace_directory(staging, out):
    if not out.exists():
        os.replace(staging, out)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.replace(out, retired / "previous")
    os.replace(staging, out)
    shutil.rmtree(retired, ignore_errors=True)
