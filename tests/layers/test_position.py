import numpy as np
import pytest

from keras_mapping.layers import PositionEmbedding, SinusoidalPositionEncoding
from tests.helpers import run_layer_test


def reference_encoding(length, dim, max_wavelength=10000):
    """PE[p, 2i] = sin(p / w^(2i/d)), PE[p, 2i+1] = cos(p / w^(2i/d)), evaluated in NumPy."""
    encoding = np.zeros((length, dim))
    for p in range(length):
        for column in range(dim):
            i = column // 2
            angle = p / max_wavelength ** (2 * i / dim)
            encoding[p, column] = np.sin(angle) if column % 2 == 0 else np.cos(angle)
    return encoding


@pytest.mark.parametrize("length, dim", [(7, 16), (50, 9), (1, 1), (300, 64)])
def test_sinusoid_matches_formula(length, dim):
    x = np.zeros((2, length, dim), "float32")
    encoding = np.asarray(SinusoidalPositionEncoding()(x))
    assert encoding.shape == (2, length, dim)
    np.testing.assert_allclose(encoding[1], reference_encoding(length, dim), atol=1e-4)


def test_sinusoid_start_index_continues_the_sequence():
    layer = SinusoidalPositionEncoding(max_wavelength=100)
    full = np.asarray(layer(np.zeros((1, 10, 6), "float32")))
    tail = np.asarray(layer(np.zeros((1, 4, 6), "float32"), start_index=6))
    np.testing.assert_allclose(tail, full[:, 6:], atol=1e-5)


def test_sinusoid_contract(tmp_path):
    run_layer_test(SinusoidalPositionEncoding, {"max_wavelength": 500},
                   {"inputs": np.random.rand(2, 6, 8).astype("float32")}, (2, 6, 8), tmp_path)


def test_position_embedding_contract(tmp_path):
    layer = run_layer_test(PositionEmbedding, {"sequence_length": 10},
                           {"inputs": np.random.rand(2, 6, 8).astype("float32")}, (2, 6, 8),
                           tmp_path)
    output = np.asarray(layer(np.zeros((3, 4, 8), "float32")))
    np.testing.assert_allclose(output[2], np.asarray(layer.position_embeddings)[:4])


def test_position_embedding_rejects_long_inputs():
    layer = PositionEmbedding(sequence_length=4)
    with pytest.raises(ValueError, match="5 positions.*sequence_length=4"):
        layer(np.zeros((1, 5, 8), "float32"))
    with pytest.raises(ValueError, match="sequence_length"):
        PositionEmbedding(sequence_length=0)
