"""Figures of attention (text heatmaps, image attention rollout), training curves and
confusion matrices, as PNG files.

Figures are built with `matplotlib.figure.Figure` and rendered by Agg, never through
`pyplot`: no display is needed, no global figure list fills up in long runs, and a notebook
shows a returned figure once (with `%matplotlib inline`). Every function returns the Figure
and, given `path`, also writes it with `save_figure`.
"""

import csv
import math
from pathlib import Path

import numpy as np
from keras import ops
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from keras_mapping.checkpoints.model_dir import write_atomically
from keras_mapping.layers.patches import as_pair

DPI = 100
CURVES_PANEL_INCHES = (5.0, 4.0)
CONFUSION_CELL_INCHES = 1.25
ROLLOUT_PANEL_INCHES = 4.0


def new_figure(width, height):
    """A Figure of `width` x `height` inches at `DPI`, drawn by Agg."""
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure, path):
    """Writes `figure` to `path` atomically: a half-written image never appears there.

    The format follows the suffix (PNG when there is none); the image is exactly the
    figure's size in inches times its dpi.

    Args:
        figure: a matplotlib Figure.
        path: destination file; missing folders are created.

    Returns:
        The path, as a `pathlib.Path`.

    Example:
    >>> import tempfile
    >>> figure = new_figure(2, 1)
    >>> path = save_figure(figure, Path(tempfile.mkdtemp()) / "blank.png")
    >>> import matplotlib.image
    >>> matplotlib.image.imread(path).shape[:2]
    (100, 200)
    """
    path = Path(path)
    image_format = path.suffix[1:].lower() or "png"
    write_atomically(path, lambda temporary: figure.savefig(temporary, format=image_format))
    return path


def _finish(figure, path):
    if path is not None:
        save_figure(figure, path)
    return figure


def _selected(indices, count, name):
    """`indices` (an int, a list of ints, or None for all) as non-negative ints < count."""
    if indices is None:
        return list(range(count))
    indices = [indices] if isinstance(indices, int) else list(indices)
    if not indices:
        raise ValueError(f"`{name}` is empty; give indices in [-{count}, {count}) or None.")
    for index in indices:
        if not -count <= index < count:
            raise ValueError(f"`{name}` has {index}, outside [-{count}, {count}) for this "
                             f"model's {count} {name}.")
    return [index % count for index in indices]


def attention_heatmaps(backbone, preprocessor, text, layers=None, heads=None, path=None,
                       text_pair=None):
    """Attention probabilities of one text (or text pair), one heatmap per selected
    (layer, head).

    Rows of a heatmap are the attending (query) tokens, columns the attended (key) tokens,
    both labelled with the decoded WordPiece tokens; padded positions are left out, and so
    are the learned positions of prefix tuning. The grid has one row per layer and one
    column per head; each heatmap is `max(2.5, 0.25 * tokens + 1)` inches square, plus an
    inch of width for the colour bar.

    Args:
        backbone: a `BertBackbone` (anything with `attention_scores`).
        preprocessor: a `BertTextPreprocessor` with the backbone's vocabulary.
        text: the sentence to look at.
        layers: encoder layer index or list of indices (negative counts from the top);
            None takes every layer.
        heads: head index or list of indices; None takes every head.
        path: also write the figure there (see `save_figure`).
        text_pair: a second sentence, packed after `text` as in sentence-pair tasks.

    Returns:
        The matplotlib Figure.

    Raises:
        ValueError: `text` is not one string, or a layer or head index is out of range.

    Example:
    >>> from keras_mapping.models import BertBackbone
    >>> from keras_mapping.tokenizers import BertTextPreprocessor
    >>> preprocessor = BertTextPreprocessor.from_preset("minilm_l6", max_length=16)
    >>> backbone = BertBackbone.from_architecture(
    ...     "bert_tiny", vocabulary_size=preprocessor.tokenizer.vocabulary_size())
    >>> figure = attention_heatmaps(backbone, preprocessor, "A witty film.", layers=-1,
    ...                             heads=[0, 1])
    >>> [axes.get_title() for axes in figure.axes[:2]]
    ['layer 1, head 0', 'layer 1, head 1']
    >>> [label.get_text() for label in figure.axes[0].get_xticklabels()]
    ['[CLS]', 'a', 'witty', 'film', '.', '[SEP]']
    """
    for value in (text, *(() if text_pair is None else (text_pair,))):
        if not isinstance(value, str):
            raise ValueError(f"`text` and `text_pair` must be strings, got "
                             f"{type(value).__name__}.")
    inputs = preprocessor([text] if text_pair is None else ([text], [text_pair]))
    scores = backbone.attention_scores(inputs)
    layer_indices = _selected(layers, len(scores), "layers")
    head_indices = _selected(heads, int(scores[0].shape[1]), "heads")
    mask = np.asarray(ops.convert_to_numpy(inputs["padding_mask"]))[0]
    token_ids = np.asarray(ops.convert_to_numpy(inputs["token_ids"]))[0][mask]
    tokens = [preprocessor.tokenizer.id_to_token(int(i)) for i in token_ids]
    length = len(tokens)

    panel = max(2.5, 0.25 * length + 1.0)
    figure = new_figure(panel * len(head_indices) + 1.0, panel * len(layer_indices))
    grid = figure.subplots(len(layer_indices), len(head_indices), squeeze=False,
                           sharex=True, sharey=True)
    for row, layer in enumerate(layer_indices):
        layer_scores = np.asarray(ops.convert_to_numpy(scores[layer]), "float32")[0]
        # Prefix tuning puts its learned key positions before the text's.
        prefix = layer_scores.shape[-1] - layer_scores.shape[-2]
        for column, head in enumerate(head_indices):
            axes = grid[row, column]
            image = axes.imshow(layer_scores[head, :length, prefix:prefix + length],
                                cmap="viridis", vmin=0.0, vmax=1.0)
            axes.set_title(f"layer {layer}, head {head}", fontsize=9)
    for axes in grid.flat:
        axes.set_xticks(range(length), tokens, rotation=90, fontsize=8)
        axes.set_yticks(range(length), tokens, fontsize=8)
    for axes in grid[-1]:
        axes.set_xlabel("attended token (key)")
    for axes in grid[:, 0]:
        axes.set_ylabel("attending token (query)")
    figure.colorbar(image, ax=grid, label="attention probability", shrink=0.8)
    return _finish(figure, path)


def attention_rollout(layer_scores):
    """Attention rollout (Abnar & Zuidema, 2020): how much each token's final
    representation draws on each input token, through every layer.

    Each layer's heads are averaged, the identity is added (the residual connection carries
    a token's own representation past attention) and rows renormalised; the layers are then
    multiplied, input side first: `rollout = A_L @ ... @ A_2 @ A_1`.

    Args:
        layer_scores: one `(batch, heads, tokens, keys)` array per layer, input side first
            (`backbone.attention_scores(...)`). Keys beyond `tokens` (prefix tuning's
            learned positions, which come first) are left out.

    Returns:
        A float64 array `(batch, tokens, tokens)`; each row sums to 1.

    Example: attention that stays on each token leaves every token its own.
    >>> identity = np.eye(3)[None, None]
    >>> attention_rollout([identity, identity])[0]
    array([[1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]])
    >>> attend_last = np.zeros((1, 1, 3, 3)); attend_last[..., 2] = 1.0
    >>> attention_rollout([attend_last])[0, 0].tolist()
    [0.5, 0.0, 0.5]
    """
    rollout = None
    for scores in layer_scores:
        scores = np.asarray(scores, "float64")
        tokens = scores.shape[-2]
        mixed = scores[..., -tokens:].mean(axis=1) + np.eye(tokens)
        mixed /= mixed.sum(axis=-1, keepdims=True)
        rollout = mixed if rollout is None else mixed @ rollout
    if rollout is None:
        raise ValueError("`layer_scores` is empty; attention rollout needs at least one layer.")
    return rollout


def class_token_map(rollout, grid_shape, image_size):
    """The class token's row of an attention rollout over the patch tokens, as an image.

    Args:
        rollout: `(batch, 1 + patches, 1 + patches)`, the class token first and the patches
            in row-major order (`attention_rollout` of a ViT).
        grid_shape: `(rows, columns)` of patches.
        image_size: `(height, width)` to upsample to; each pixel takes the value of the patch
            over it (nearest neighbour), so a patch's share stays visible as a block.

    Returns:
        A float array `(batch, height, width)`.

    Example:
    >>> rollout = np.zeros((1, 5, 5)); rollout[0, 0, 1:] = [0.1, 0.2, 0.3, 0.4]
    >>> class_token_map(rollout, (2, 2), (4, 4))[0]
    array([[0.1, 0.1, 0.2, 0.2],
           [0.1, 0.1, 0.2, 0.2],
           [0.3, 0.3, 0.4, 0.4],
           [0.3, 0.3, 0.4, 0.4]])
    """
    rows, columns = grid_shape
    patches = np.asarray(rollout)[:, 0, 1:]
    if patches.shape[-1] != rows * columns:
        raise ValueError(f"The rollout has {patches.shape[-1]} patch tokens; a {rows}x{columns} "
                         "patch grid needs one per patch.")
    grid = patches.reshape(-1, rows, columns)
    height, width = image_size
    return grid[:, np.arange(height) * rows // height][:, :, np.arange(width) * columns // width]


def patch_grid_shape(backbone):
    """`(rows, columns)` of patches of a ViT backbone (a trailing partial patch is dropped)."""
    image_size = as_pair(backbone.image_size, "image_size")
    patch_size = as_pair(backbone.patch_size, "patch_size")
    return tuple(size // patch for size, patch in zip(image_size, patch_size))


def attention_rollout_overlay(backbone, images, pixels, title=None, path=None):
    """The attention rollout of one image through a ViT backbone, drawn over the image.

    Two panels, each 4 inches square: the image, then the image with the class token's
    rollout over the patches (`class_token_map`) laid over it, with a colour bar.

    Args:
        backbone: a `ViTBackbone` (anything with `attention_scores`, `image_size` and
            `patch_size`).
        images: the model's input for the image, `(1, height, width, 3)`, normalised as
            the model was trained.
        pixels: the same image for display, `(height, width, 3)` in [0, 1].
        title: the figure's title (e.g. the predicted label).
        path: also write the figure there (see `save_figure`).

    Returns:
        The matplotlib Figure; its second panel holds the map as its second image.

    Example:
    >>> from keras_mapping.models import ViTBackbone
    >>> backbone = ViTBackbone(image_size=16, patch_size=4, num_layers=1, num_heads=2,
    ...                        hidden_dim=16, intermediate_dim=32)
    >>> pixels = np.zeros((16, 16, 3), "float32")
    >>> figure = attention_rollout_overlay(backbone, pixels[None] * 2 - 1, pixels, "black")
    >>> figure.axes[1].images[1].get_array().shape
    (16, 16)
    """
    scores = [ops.convert_to_numpy(layer) for layer in backbone.attention_scores(images)]
    heat = class_token_map(attention_rollout(scores), patch_grid_shape(backbone),
                           np.shape(pixels)[:2])[0]
    figure = new_figure(2 * ROLLOUT_PANEL_INCHES + 1.0, ROLLOUT_PANEL_INCHES + 0.5)
    image_axes, overlay_axes = figure.subplots(1, 2)
    for axes in (image_axes, overlay_axes):
        axes.imshow(pixels)
        axes.set_axis_off()
    overlay = overlay_axes.imshow(heat, cmap="inferno", alpha=0.6)
    image_axes.set_title("image")
    overlay_axes.set_title("attention rollout of the class token")
    figure.colorbar(overlay, ax=overlay_axes, label="share of the class token", shrink=0.8)
    if title:
        figure.suptitle(title)
    return _finish(figure, path)


def read_training_log(csv_path):
    """The columns of a Keras CSVLogger file as `{name: float array}`.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: it is empty, has no `epoch` and `loss` columns, no rows, or a value
            that is not a number (the message names the file and line).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"Training log '{csv_path}' does not exist (finetune and "
                                "pretrain write DIR/logs/training.csv).")
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames
        if not columns:
            raise ValueError(f"Training log '{csv_path}' is empty; expected a CSVLogger "
                             "header such as 'epoch,accuracy,loss,val_accuracy,val_loss'.")
        missing = [name for name in ("epoch", "loss") if name not in columns]
        if missing:
            raise ValueError(f"Training log '{csv_path}' lacks the column(s) "
                             f"{', '.join(missing)}; its header is {','.join(columns)}.")
        values = {name: [] for name in columns}
        for row in reader:
            for name in columns:
                try:
                    values[name].append(float(row[name]))
                except (TypeError, ValueError):
                    raise ValueError(f"{csv_path}:{reader.line_num}: column '{name}' holds "
                                     f"{row[name]!r}, not a number.") from None
    if not values["epoch"]:
        raise ValueError(f"Training log '{csv_path}' has a header but no rounds yet.")
    return {name: np.asarray(series) for name, series in values.items()}


# Task scores logged per round (`keras_mapping.training.callbacks.TaskValidation`).
SCORE_COLUMNS = ("f1", "macro_f1", "micro_f1", "mcc", "pearson", "spearman")


def training_curves(csv_path, path=None):
    """Loss, accuracy and the tasks' scores where logged, per validation round of a run.

    One panel for the loss columns, one for the accuracy columns and one for the other task
    scores (`SCORE_COLUMNS`: F1, MCC, correlations) of a Keras CSVLogger file (training and
    `val_` series alike); each panel is 5 x 4 inches.

    Args:
        csv_path: a CSVLogger file, e.g. `DIR/logs/training.csv` of a finetune run.
        path: also write the figure there (see `save_figure`).

    Returns:
        The matplotlib Figure.

    Raises:
        FileNotFoundError: `csv_path` does not exist.
        ValueError: the file is empty or lacks the `epoch` and `loss` columns.

    Example:
    >>> import tempfile
    >>> log = Path(tempfile.mkdtemp()) / "training.csv"
    >>> _ = log.write_text("epoch,accuracy,loss,val_accuracy,val_loss\\n"
    ...                    "0,0.70,0.60,0.75,0.50\\n1,0.85,0.35,0.82,0.41\\n")
    >>> figure = training_curves(log)
    >>> [axes.get_title() for axes in figure.axes]
    ['loss', 'accuracy']
    >>> [line.get_label() for line in figure.axes[1].get_lines()]
    ['accuracy', 'val_accuracy']
    """
    log = read_training_log(csv_path)
    rounds = log["epoch"] + 1  # CSVLogger counts from 0
    panels = [("loss", [name for name in log if name.removeprefix("val_").endswith("loss")])]
    accuracies = [name for name in log if name.removeprefix("val_").endswith("accuracy")]
    if accuracies:
        panels.append(("accuracy", accuracies))
    scores = [name for name in log if name.removeprefix("val_") in SCORE_COLUMNS]
    if scores:
        panels.append(("scores", scores))
    width, height = CURVES_PANEL_INCHES
    figure = new_figure(width * len(panels), height)
    for axes, (title, names) in zip(figure.subplots(1, len(panels), squeeze=False)[0],
                                    panels):
        for name in names:
            axes.plot(rounds, log[name], marker="o", markersize=3,
                      linestyle="--" if name.startswith("val_") else "-", label=name)
        axes.set_title(title)
        axes.set_xlabel("validation round")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend()
    return _finish(figure, path)


def confusion_matrix(matrix, label_names, path=None):
    """A confusion matrix with the count written in each cell.

    Rows are the true labels, columns the predicted ones; the title gives the accuracy.
    Each cell is 1.25 inches square, plus room for the labels.

    Args:
        matrix: square counts, `matrix[true][predicted]` (e.g. `metrics.json`'s
            "confusion_matrix").
        label_names: one name per row, in label-id order.
        path: also write the figure there (see `save_figure`).

    Returns:
        The matplotlib Figure.

    Raises:
        ValueError: the matrix is not square or does not match `label_names`.

    Example:
    >>> figure = confusion_matrix([[40, 10], [5, 45]], ["negative", "positive"])
    >>> figure.axes[0].get_title()
    'accuracy 0.850 (100 examples)'
    >>> sorted(text.get_text() for text in figure.axes[0].texts)
    ['10', '40', '45', '5']
    """
    counts = np.asarray(matrix)
    label_names = [str(name) for name in label_names]
    if counts.ndim != 2 or counts.shape != (len(label_names), len(label_names)):
        raise ValueError(f"The confusion matrix has shape {counts.shape}; expected "
                         f"({len(label_names)}, {len(label_names)}) for the labels "
                         f"{label_names}.")
    size = len(label_names)
    side = CONFUSION_CELL_INCHES * size + 2.5
    figure = new_figure(side + 1.0, side)
    axes = figure.subplots()
    image = axes.imshow(counts, cmap="Blues", vmin=0)
    threshold = counts.max() / 2 if counts.size else 0
    for true, predicted in np.ndindex(counts.shape):
        value = counts[true, predicted]
        axes.text(predicted, true, f"{value:,}", ha="center", va="center",
                  color="white" if value > threshold else "black")
    axes.set_xticks(range(size), label_names)
    axes.set_yticks(range(size), label_names)
    axes.set_xlabel("predicted label")
    axes.set_ylabel("true label")
    total = int(counts.sum())
    accuracy = np.trace(counts) / total if total else math.nan
    axes.set_title(f"accuracy {accuracy:.3f} ({total:,} examples)")
    figure.colorbar(image, ax=axes, shrink=0.8)
    return _finish(figure, path)
