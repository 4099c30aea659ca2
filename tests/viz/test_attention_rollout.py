"""`plot --kind attention IMAGE`: the attention-rollout arithmetic on hand-made attention,
the figure of a tiny ViT image classifier directory through the CLI, and the refusals (a
ResNet, a text model, a missing or unreadable image)."""

import matplotlib.image
import numpy as np
import pytest

from keras_mapping.cli.main import main
from keras_mapping.data.layout import Columns
from keras_mapping.data.readers import LabelVocabulary
from keras_mapping.models import (BertBackbone, BertTextClassifier, ImageClassifier,
                                  ResNetBackbone, ViTBackbone)
from keras_mapping.tasks.classification import ClassificationTask
from keras_mapping.tasks.image_classification import ImageClassificationTask
from keras_mapping.tasks.model_directory import save_model_directory
from keras_mapping.tokenizers import BertTokenizer
from keras_mapping.viz.cli import plot_model_directory
from keras_mapping.viz.plots import attention_rollout, class_token_map
from tests.helpers import IMAGE_COLORS, write_image

CLASSES = sorted(IMAGE_COLORS)
TOKENS = 5  # the class token and a 2x2 grid of patches


def one_hot_attention(key, tokens=TOKENS, heads=2):
    """`(1, heads, tokens, tokens)` attention in which every query attends to `key` only."""
    scores = np.zeros((1, heads, tokens, tokens))
    scores[..., key] = 1.0
    return scores


def test_rollout_rows_are_distributions():
    scores = np.random.default_rng(0).dirichlet(np.ones(TOKENS), size=(2, 3, TOKENS))
    rollout = attention_rollout([scores, scores[:, ::-1]])
    assert rollout.shape == (2, TOKENS, TOKENS)
    np.testing.assert_allclose(rollout.sum(axis=-1), 1.0)


@pytest.mark.parametrize("scores", [np.eye(TOKENS)[None, None],
                                    np.full((1, 2, TOKENS, TOKENS), 1.0 / TOKENS)])
def test_self_or_uniform_attention_gives_a_uniform_map(scores):
    heat = class_token_map(attention_rollout([scores, scores]), (2, 2), (8, 8))
    assert heat.shape == (1, 8, 8)
    np.testing.assert_allclose(heat, heat[0, 0, 0])


@pytest.mark.parametrize("key", [1, 2, 3, 4])
def test_attending_to_one_patch_puts_the_maximum_on_it(key):
    rollout = attention_rollout([np.eye(TOKENS)[None, None], one_hot_attention(key)])
    # (I + one-hot) / 2: the class token keeps half, patch `key` gets the other half.
    np.testing.assert_allclose(rollout[0, 0], np.eye(TOKENS)[0] / 2 + np.eye(TOKENS)[key] / 2)
    grid = class_token_map(rollout, (2, 2), (2, 2))[0]
    assert np.unravel_index(grid.argmax(), grid.shape) == divmod(key - 1, 2)
    # Upsampled, the whole 4x4 block of patch `key` holds the maximum.
    heat = class_token_map(rollout, (2, 2), (8, 8))[0]
    row, column = divmod(key - 1, 2)
    assert (heat[4 * row:4 * row + 4, 4 * column:4 * column + 4] == heat.max()).all()
    assert (heat < heat.max()).sum() == 48


def test_layers_multiply_input_side_first():
    # Layer 1 moves patch 2 into patch 1, layer 2 moves patch 1 into the class token: the
    # class token reaches patch 2 only through both, in that order.
    first = np.eye(TOKENS)[None, None].copy()
    first[0, 0, 1] = np.eye(TOKENS)[2]
    second = np.eye(TOKENS)[None, None].copy()
    second[0, 0, 0] = np.eye(TOKENS)[1]
    assert attention_rollout([first, second])[0, 0, 2] == pytest.approx(0.25)
    assert attention_rollout([second, first])[0, 0, 2] == pytest.approx(0.0)


def test_rollout_of_no_layers_is_refused():
    with pytest.raises(ValueError, match="at least one layer"):
        attention_rollout([])


def image_directory(root, backbone):
    task = ImageClassificationTask(CLASSES, (16, 16))
    save_model_directory(root, ImageClassifier(backbone, num_classes=len(CLASSES)), None, task,
                         {"preset": "tiny"}, {"accuracy": 0.0})
    return root


@pytest.fixture(scope="module")
def vit_directory(tmp_path_factory):
    backbone = ViTBackbone(image_size=16, patch_size=4, num_layers=2, num_heads=2,
                           hidden_dim=16, intermediate_dim=32)
    return image_directory(tmp_path_factory.mktemp("vit"), backbone)


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    return write_image(tmp_path_factory.mktemp("images") / "red.jpg", IMAGE_COLORS["red"],
                       np.random.default_rng(0), size=20)


def test_cli_draws_the_rollout_over_the_image(vit_directory, image_file, tmp_path, capsys):
    out = tmp_path / "attention.png"
    assert main(["plot", "--model", str(vit_directory), "--kind", "attention",
                 str(image_file), "--out", str(out)]) == 0, capsys.readouterr().err
    height, width = matplotlib.image.imread(out).shape[:2]
    assert (height, width) == (450, 900)  # two 4-inch panels, a colour bar, a title


def test_figure_shows_the_image_the_map_and_the_label(vit_directory, image_file, tmp_path):
    figure = plot_model_directory(vit_directory, "attention", tmp_path / "a.png",
                                  image=image_file)
    image_axes, overlay_axes = figure.axes[:2]
    assert figure._suptitle.get_text().startswith("red.jpg: predicted ")
    assert figure._suptitle.get_text().split()[2] in CLASSES
    # The 20x20 file is shown as the model saw it: resized to 16x16, in [0, 1].
    pixels = np.asarray(image_axes.images[0].get_array())
    assert pixels.shape == (16, 16, 3) and 0.0 <= pixels.min() and pixels.max() <= 1.0
    heat = np.asarray(overlay_axes.images[1].get_array())
    assert heat.shape == (16, 16)
    # Rollout rows sum to one, and the class token keeps part for itself.
    patch_shares = heat[::4, ::4]
    assert 0.0 < patch_shares.sum() < 1.0


@pytest.fixture(scope="module")
def resnet_directory(tmp_path_factory):
    return image_directory(tmp_path_factory.mktemp("resnet"),
                           ResNetBackbone.from_architecture("resnet20", image_size=16))


@pytest.fixture(scope="module")
def text_directory(tmp_path_factory):
    directory = tmp_path_factory.mktemp("text")
    backbone = BertBackbone(vocabulary_size=30522, num_layers=1, num_heads=2, hidden_dim=16,
                            intermediate_dim=32, max_sequence_length=16)
    task = ClassificationTask(Columns("sentence", None, "label"),
                              LabelVocabulary.from_names(["negative", "positive"]))
    save_model_directory(directory, BertTextClassifier(backbone, num_classes=2),
                         BertTokenizer.from_preset("minilm_l6"), task, {"max_length": 16}, {})
    return directory


@pytest.mark.parametrize("directory, named", [("resnet_directory", "ResNetBackbone"),
                                              ("text_directory", "text model")])
def test_models_without_a_vit_are_refused(directory, named, request, image_file, tmp_path,
                                          capsys):
    directory = request.getfixturevalue(directory)
    out = tmp_path / "never.png"
    assert main(["plot", "--model", str(directory), "--kind", "attention", str(image_file),
                 "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert str(directory) in error and named in error and "need a ViT" in error
    assert not out.exists()


def test_missing_or_unreadable_images_are_named(vit_directory, tmp_path):
    missing = tmp_path / "missing.png"
    with pytest.raises(FileNotFoundError, match="missing.png"):
        plot_model_directory(vit_directory, "attention", tmp_path / "a.png", image=missing)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ValueError, match="broken.png"):
        plot_model_directory(vit_directory, "attention", tmp_path / "a.png", image=broken)


def test_an_image_model_asks_for_an_image_not_text(vit_directory, tmp_path):
    with pytest.raises(ValueError, match="give an IMAGE file"):
        plot_model_directory(vit_directory, "attention", tmp_path / "a.png", text="A film.")
