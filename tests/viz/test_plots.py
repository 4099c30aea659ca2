import argparse
import json

import matplotlib.image
import numpy as np
import pytest

from keras_mapping.data.layout import Columns
from keras_mapping.tasks.classification import ClassificationTask
from keras_mapping.tasks.model_directory import save_model_directory
from keras_mapping.data import LabelVocabulary
from keras_mapping.models import BertBackbone, BertTextClassifier
from keras_mapping.tokenizers import BertTextPreprocessor, BertTokenizer
from keras_mapping.viz import attention_heatmaps, confusion_matrix, save_figure, training_curves
from keras_mapping.viz.cli import add_plot_parser, plot_model_directory

TEXT = "A witty film."  # [CLS] a witty film . [SEP]: 6 tokens, padded to 16
LOG_HEADER = "epoch,accuracy,loss,val_accuracy,val_loss"
LOG_ROWS = ["0,0.70,0.60,0.75,0.50", "1,0.85,0.35,0.82,0.41", "2,0.90,0.25,0.84,0.39"]
CONFUSION = [[3, 1], [0, 4]]


def pixel_size(path):
    """(height, width) of an image file, read back from disk."""
    assert path.stat().st_size > 0
    return matplotlib.image.imread(path).shape[:2]


def tiny_backbone():
    return BertBackbone(vocabulary_size=30522, num_layers=2, num_heads=2, hidden_dim=16,
                        intermediate_dim=32, max_sequence_length=64)


@pytest.fixture(scope="module")
def preprocessor():
    return BertTextPreprocessor.from_preset("minilm_l6", max_length=16)


@pytest.fixture(scope="module")
def model_directory(tmp_path_factory):
    """A finetune-style directory: a tiny classifier, its training log and metrics."""
    directory = tmp_path_factory.mktemp("model")
    classifier = BertTextClassifier(tiny_backbone(), num_classes=2)
    task = ClassificationTask(Columns("sentence", None, "label"),
                              LabelVocabulary.from_names(["negative", "positive"]))
    save_model_directory(directory, classifier, BertTokenizer.from_preset("minilm_l6"), task,
                         {"max_length": 16}, {"accuracy": 0.875, "confusion_matrix": CONFUSION})
    (directory / "logs").mkdir()
    (directory / "logs" / "training.csv").write_text("\n".join([LOG_HEADER, *LOG_ROWS]) + "\n")
    return directory


def run_plot_verb(*flags):
    verbs = argparse.ArgumentParser().add_subparsers(dest="verb")
    add_plot_parser(verbs)
    arguments = verbs.choices["plot"].parse_args(list(flags))
    arguments.run(arguments)


def test_attention_heatmaps_show_the_selected_heads_without_padding(preprocessor, tmp_path):
    path = tmp_path / "attention.png"
    figure = attention_heatmaps(tiny_backbone(), preprocessor, TEXT, layers=-1, heads=[0, 1],
                                path=path)
    heatmaps = [axes for axes in figure.axes if axes.images]
    assert [axes.get_title() for axes in heatmaps] == ["layer 1, head 0", "layer 1, head 1"]
    tokens = ["[CLS]", "a", "witty", "film", ".", "[SEP]"]
    # Shared axes: query tokens label the first column only.
    assert [label.get_text() for label in heatmaps[0].get_yticklabels()] == tokens
    for axes in heatmaps:
        assert [label.get_text() for label in axes.get_xticklabels()] == tokens
        probabilities = np.asarray(axes.images[0].get_array())
        assert probabilities.shape == (6, 6)
        # Padded keys take no probability: the real ones alone sum to one per query.
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # 2.5-inch heatmaps for 6 tokens, one row (layer) by two columns (heads), plus the bar.
    assert pixel_size(path) == (250, 600)


def test_attention_grid_has_a_row_per_layer(preprocessor, tmp_path):
    path = tmp_path / "layers.png"
    figure = attention_heatmaps(tiny_backbone(), preprocessor, TEXT, heads=1, path=path)
    assert [axes.get_title() for axes in figure.axes if axes.images] == [
        "layer 0, head 1", "layer 1, head 1"]
    assert pixel_size(path) == (500, 350)


@pytest.mark.parametrize("selection", [{"layers": 2}, {"heads": [0, -3]}, {"layers": []}])
def test_attention_rejects_indices_out_of_range(preprocessor, selection):
    name = next(iter(selection))
    with pytest.raises(ValueError, match=f"`{name}`"):
        attention_heatmaps(tiny_backbone(), preprocessor, TEXT, **selection)


def test_attention_takes_one_sentence(preprocessor):
    with pytest.raises(ValueError, match="`text` and `text_pair` must be strings, got list"):
        attention_heatmaps(tiny_backbone(), preprocessor, [TEXT, TEXT])


def test_training_curves_plot_train_and_validation_series(tmp_path):
    log = tmp_path / "training.csv"
    log.write_text("\n".join([LOG_HEADER, *LOG_ROWS]) + "\n")
    path = tmp_path / "plots" / "curves.png"
    figure = training_curves(log, path=path)
    loss, accuracy = figure.axes
    assert [line.get_label() for line in loss.get_lines()] == ["loss", "val_loss"]
    assert [line.get_label() for line in accuracy.get_lines()] == ["accuracy", "val_accuracy"]
    rounds, values = accuracy.get_lines()[1].get_data()
    assert list(rounds) == [1, 2, 3] and list(values) == [0.75, 0.82, 0.84]
    assert [tick for tick in accuracy.get_xticks() if 1 <= tick <= 3] == [1, 2, 3]
    assert pixel_size(path) == (400, 1000)


def test_training_curves_of_a_log_without_accuracy_have_one_panel(tmp_path):
    log = tmp_path / "training.csv"
    log.write_text("epoch,loss,val_loss\n0,2.5,2.7\n1,2.1,2.4\n")
    path = tmp_path / "curves.png"
    assert [axes.get_title() for axes in training_curves(log, path).axes] == ["loss"]
    assert pixel_size(path) == (400, 500)


@pytest.mark.parametrize("content,message", [
    ("", "is empty"),
    ("step,accuracy\n0,0.5\n", "lacks the column\\(s\\) epoch, loss"),
    (LOG_HEADER + "\n", "no rounds"),
    (LOG_HEADER + "\n0,0.7,nan?,0.7,0.5\n", ":2: column 'loss'"),
])
def test_training_curves_name_the_file_of_a_bad_log(tmp_path, content, message):
    log = tmp_path / "broken.csv"
    log.write_text(content)
    with pytest.raises(ValueError, match=message) as error:
        training_curves(log)
    assert "broken.csv" in str(error.value)


def test_training_curves_of_a_missing_log(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.csv"):
        training_curves(tmp_path / "absent.csv")


def test_confusion_matrix_annotates_counts_with_true_labels_as_rows(tmp_path):
    path = tmp_path / "confusion.png"
    figure = confusion_matrix(CONFUSION, ["negative", "positive"], path=path)
    axes = figure.axes[0]
    cells = {(text.get_position(), text.get_text()) for text in axes.texts}
    # Text positions are (x = predicted, y = true).
    assert cells == {((0, 0), "3"), ((1, 0), "1"), ((0, 1), "0"), ((1, 1), "4")}
    assert axes.get_ylabel() == "true label"
    assert axes.get_title() == "accuracy 0.875 (8 examples)"
    assert pixel_size(path) == (500, 600)


def test_confusion_matrix_must_match_the_labels():
    with pytest.raises(ValueError, match=r"shape \(2, 2\); expected \(3, 3\)"):
        confusion_matrix(CONFUSION, ["a", "b", "c"])


def test_save_figure_replaces_atomically_and_leaves_no_partial_file(tmp_path):
    path = tmp_path / "figure.png"
    save_figure(confusion_matrix(CONFUSION, ["n", "p"]), path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="Format 'nope' is not supported"):
        save_figure(confusion_matrix(CONFUSION, ["n", "p"]), tmp_path / "figure.nope")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png"]
    assert path.read_bytes() == before


@pytest.mark.parametrize("kind,expected_size", [("curves", (400, 1000)),
                                                ("confusion", (500, 600)),
                                                ("attention", (500, 600))])
def test_plot_verb_draws_each_kind(model_directory, tmp_path, capsys, kind, expected_size):
    out = tmp_path / f"{kind}.png"
    run_plot_verb("--kind", kind, "--model", str(model_directory), "--out", str(out),
                  "--text", TEXT)
    assert capsys.readouterr().out.strip() == f"plot: wrote {out}"
    assert pixel_size(out) == expected_size  # attention: both layers by both heads


def test_plot_verb_passes_layer_and_head(model_directory, tmp_path):
    figure = plot_model_directory(model_directory, "attention", tmp_path / "a.png", text=TEXT,
                                  layers=[0], heads=[1])
    assert [axes.get_title() for axes in figure.axes if axes.images] == ["layer 0, head 1"]
    assert [axes.get_xticklabels()[2].get_text() for axes in figure.axes[:1]] == ["witty"]


def test_plot_verb_rejects_an_unknown_kind(capsys):
    with pytest.raises(SystemExit) as error:
        run_plot_verb("--kind", "histogram", "--model", "DIR", "--out", "x.png")
    assert error.value.code == 2
    assert "invalid choice: 'histogram'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="Unknown plot kind 'histogram'"):
        plot_model_directory("DIR", "histogram", "x.png")


def test_plot_verb_errors_name_the_missing_file_or_argument(model_directory, tmp_path):
    with pytest.raises(ValueError, match="--text"):
        plot_model_directory(model_directory, "attention", tmp_path / "a.png")
    with pytest.raises(FileNotFoundError, match="does_not_exist"):
        plot_model_directory(tmp_path / "does_not_exist", "curves", tmp_path / "c.png")
    empty = tmp_path / "empty_model"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="training.csv"):
        plot_model_directory(empty, "curves", tmp_path / "c.png")
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        plot_model_directory(empty, "confusion", tmp_path / "c.png")
    (empty / "metrics.json").write_text(json.dumps({"accuracy": 0.5}))
    with pytest.raises(ValueError, match="metrics.json' holds no \"confusion_matrix\""):
        plot_model_directory(empty, "confusion", tmp_path / "c.png")
    assert not list(tmp_path.glob("*.png"))
