import numpy as np
import pytest

from keras_mapping.layers import ClassTokenAndPositions, PatchEmbedding
from tests.helpers import run_layer_test

RNG = np.random.default_rng(3)


def test_patch_embedding_contract(tmp_path):
    # 18 x 13 images in 4 x 4 patches: the trailing 2-row and 1-column strips are dropped.
    run_layer_test(PatchEmbedding, {"hidden_dim": 8, "patch_size": 4},
                   {"inputs": RNG.random((2, 18, 13, 3), dtype="float32")}, (2, 12, 8),
                   tmp_path)


def test_class_token_and_positions_contract(tmp_path):
    run_layer_test(ClassTokenAndPositions, {"num_positions": 5},
                   {"inputs": RNG.random((2, 4, 8), dtype="float32")}, (2, 5, 8), tmp_path)


def test_patches_are_dense_projections_in_row_major_order():
    layer = PatchEmbedding(hidden_dim=5, patch_size=(2, 3))
    images = RNG.random((2, 4, 6, 3), dtype="float32")
    patches = np.asarray(layer(images))
    kernel = np.asarray(layer.projection.kernel).reshape(-1, 5)  # (2 * 3 * 3, 5)
    bias = np.asarray(layer.projection.bias)
    expected = [images[:, row:row + 2, column:column + 3].reshape(2, -1) @ kernel + bias
                for row in (0, 2) for column in (0, 3)]
    np.testing.assert_allclose(patches, np.stack(expected, axis=1), atol=1e-5)


def test_class_token_comes_first_and_positions_are_added():
    layer = ClassTokenAndPositions(num_positions=4)
    patches = RNG.random((2, 3, 6), dtype="float32")
    outputs = np.asarray(layer(patches))
    token = np.asarray(layer.class_token)[0]
    positions = np.asarray(layer.position_embedding.position_embeddings)
    np.testing.assert_allclose(outputs[:, 0], np.broadcast_to(token[0] + positions[0], (2, 6)),
                               atol=1e-6)
    np.testing.assert_allclose(outputs[:, 1:], patches + positions[1:], atol=1e-6)


def test_patch_count_must_match_positions():
    with pytest.raises(ValueError, match="got 8 patches.*positions for 4 patches"):
        ClassTokenAndPositions(num_positions=5)(np.zeros((1, 8, 4), "float32"))


@pytest.mark.parametrize("patch_size", [0, (4, 4, 4), "4", (2, -1)])
def test_patch_size_must_be_positive_ints(patch_size):
    with pytest.raises(ValueError, match="`patch_size` must be a positive int"):
        PatchEmbedding(hidden_dim=4, patch_size=patch_size)
