"""The `plot` verb: figures of a fine-tuned model directory, written as PNG files."""

import json
from pathlib import Path

import tensorflow as tf

from keras_mapping.checkpoints.model_dir import LABELS_FILE, METRICS_FILE
from keras_mapping.data.images import decode_and_resize
from keras_mapping.data.readers import LabelVocabulary
from keras_mapping.models.vit import ViTBackbone
from keras_mapping.tasks.model_directory import load_model_directory
from keras_mapping.tokenizers import BertTextPreprocessor
from keras_mapping.viz import plots

PLOT_KINDS = ("attention", "curves", "confusion")
TRAINING_LOG = Path("logs") / "training.csv"


def _label_names(model_directory, num_classes):
    """The names stored in labels.json, else the label ids."""
    labels_file = model_directory / LABELS_FILE
    if not labels_file.is_file():
        return [str(index) for index in range(num_classes)]
    return list(LabelVocabulary.from_json(labels_file.read_text(encoding="utf-8")).names)


def _confusion(model_directory, out):
    metrics_file = model_directory / METRICS_FILE
    if not metrics_file.is_file():
        raise FileNotFoundError(f"'{metrics_file}' does not exist; it is written at the end "
                                "of a finetune run.")
    matrix = json.loads(metrics_file.read_text(encoding="utf-8")).get("confusion_matrix")
    if matrix is None:
        raise ValueError(f"'{metrics_file}' holds no \"confusion_matrix\": confusion matrices "
                         "are drawn for classification models only.")
    return plots.confusion_matrix(matrix, _label_names(model_directory, len(matrix)), out)


def _backbone(bundle, model_directory):
    """The backbone whose attention is drawn; an ensemble has one per member."""
    members = getattr(bundle.model, "members", None)
    if members is not None:
        raise ValueError(f"'{model_directory}' is an ensemble of {len(members)} models, each "
                         "with its own attention: draw a member's (its directory is listed "
                         "in the ensemble's training_config.json).")
    return bundle.model.backbone


def _image_attention(model_directory, image, out):
    bundle = load_model_directory(model_directory)
    backbone = _backbone(bundle, model_directory)
    if bundle.task.modality != "image" or not isinstance(backbone, ViTBackbone):
        article = "an" if bundle.task.modality == "image" else "a"
        raise ValueError(f"'{model_directory}' holds {article} {bundle.task.modality} model "
                         f"({type(backbone).__name__}); attention maps of an image need a "
                         "ViT image classifier (finetune --preset vit_...).")
    # The task's own predict path: checks the file (naming it), decodes, resizes, normalises.
    files = bundle.task.unlabeled([image])
    images, _ = next(iter(bundle.task.dataset(files, batch_size=1)))
    row = bundle.task.predicted_rows(bundle.model.predict(images, verbose=0), files)[0]
    probability = max(row["probabilities"])
    # Shown unnormalised: the pixels the model saw, before the mean and std.
    pixels = decode_and_resize(tf.io.read_file(files.paths[0]), bundle.task.image_size)
    return plots.attention_rollout_overlay(
        backbone, images, pixels.numpy(), f"{Path(image).name}: predicted {row['label']} "
                                          f"({probability:.2f})", out)


def _attention(model_directory, out, text, layers, heads, text_pair=None, image=None):
    if image is not None:
        return _image_attention(model_directory, image, out)
    if not text:
        raise ValueError("--kind attention needs a sentence (--text 'A witty film.') for a "
                         "text model, or an IMAGE file for a ViT image classifier.")
    bundle = load_model_directory(model_directory)
    if bundle.task.modality != "text":
        raise ValueError(f"'{model_directory}' is an {bundle.task.modality} model: give an "
                         "IMAGE file, not --text, for its attention map (ViT models only).")
    if bundle.task.pairs and text_pair is None:
        raise ValueError(f"'{model_directory}' was trained on text pairs: give the second "
                         "sentence with --text-pair.")
    preprocessor = BertTextPreprocessor(bundle.tokenizer, max_length=bundle.max_length)
    return plots.attention_heatmaps(_backbone(bundle, model_directory), preprocessor, text,
                                    layers, heads, out, text_pair=text_pair)


def plot_model_directory(model_directory, kind, out, text=None, layers=None, heads=None,
                         text_pair=None, image=None):
    """Draws one figure of a finetune model directory and writes it to `out`.

    Args:
        model_directory: a directory written by `finetune`.
        kind: "attention" (heatmaps of `text` through the fine-tuned backbone, or the
            attention rollout of `image` through a fine-tuned ViT), "curves"
            (loss and accuracy from `logs/training.csv`) or "confusion" (the validation
            confusion matrix of `metrics.json`).
        out: the image file to write (PNG unless its suffix says otherwise).
        text: the sentence for "attention".
        text_pair: its second sentence, for models trained on pairs.
        layers: encoder layer indices for "attention"; None takes every layer.
        heads: head indices for "attention"; None takes every head.
        image: the image file for "attention" with a ViT image classifier.

    Returns:
        The matplotlib Figure.

    Raises:
        FileNotFoundError: the directory or the file the kind reads is missing.
        ValueError: an unknown kind, a missing `text` or `image`, an `image` for a model
            that is not a ViT image classifier, an unreadable image, or a malformed file.

    Example (given a finetune run in saved_models/sst2)::

        plot_model_directory("saved_models/sst2", "curves", "curves.png")
    """
    model_directory = Path(model_directory)
    if kind not in PLOT_KINDS:
        raise ValueError(f"Unknown plot kind {kind!r}; expected one of {', '.join(PLOT_KINDS)}.")
    if not model_directory.is_dir():
        raise FileNotFoundError(f"Model directory '{model_directory}' does not exist.")
    if image is not None and kind != "attention":
        raise ValueError(f"An IMAGE ('{image}') is drawn by --kind attention only, not {kind}.")
    if kind == "curves":
        return plots.training_curves(model_directory / TRAINING_LOG, out)
    if kind == "confusion":
        return _confusion(model_directory, out)
    return _attention(model_directory, out, text, layers, heads, text_pair, image)


def _plot(arguments):
    plot_model_directory(arguments.model, arguments.kind, arguments.out, text=arguments.text,
                         layers=arguments.layer, heads=arguments.head,
                         text_pair=arguments.text_pair, image=arguments.image)
    print(f"plot: wrote {arguments.out}")


def add_plot_parser(verbs):
    """Adds the `plot` verb to the subparsers of the `keras-mapping` command.

    Args:
        verbs: the object `argparse.ArgumentParser.add_subparsers()` returned.

    Returns:
        The verb's parser; `arguments.run(arguments)` draws the figure.

    Example:
    >>> import argparse
    >>> verbs = argparse.ArgumentParser().add_subparsers(dest="verb")
    >>> parser = add_plot_parser(verbs)
    >>> arguments = parser.parse_args(["--kind", "curves", "--model", "DIR", "--out", "a.png"])
    >>> arguments.kind, arguments.run.__name__
    ('curves', '_plot')
    """
    parser = verbs.add_parser(
        "plot", help="Draw a PNG of a model directory: attention heatmaps of a sentence, "
                     "the attention rollout of an image (ViT), training curves or the "
                     "validation confusion matrix.")
    parser.add_argument("--kind", required=True, choices=PLOT_KINDS,
                        help="attention: heatmaps of --text per layer and head (text "
                             "models), or the attention rollout of IMAGE (ViT image "
                             "classifiers); curves: loss "
                             "and accuracy from DIR/logs/training.csv; confusion: the "
                             "confusion matrix from DIR/metrics.json.")
    parser.add_argument("--model", required=True, metavar="DIR",
                        help="Model directory from finetune.")
    parser.add_argument("--out", required=True, metavar="PNG", help="Image file to write.")
    parser.add_argument("--text", default=None, help="The sentence for --kind attention.")
    parser.add_argument("image", nargs="?", default=None, metavar="IMAGE",
                        help="An image file for --kind attention of a ViT image classifier.")
    parser.add_argument("--text-pair", default=None,
                        help="Its second sentence, for models trained on text pairs.")
    parser.add_argument("--layer", type=int, nargs="+", default=None, metavar="INDEX",
                        help="Encoder layers to show (negative counts from the top; "
                             "default: all).")
    parser.add_argument("--head", type=int, nargs="+", default=None, metavar="INDEX",
                        help="Attention heads to show (default: all).")
    parser.set_defaults(run=_plot)
    return parser
