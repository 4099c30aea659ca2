import keras
import numpy as np

from keras_mapping.layers import TokenAndPositionEmbedding, TransformerEncoder
from tests.helpers import run_layer_test

IDS = np.array([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12]])
SEGMENTS = np.array([[0, 0, 1, 0, 0], [0, 1, 1, 1, 1]])
CONFIG = {"vocabulary_size": 20, "sequence_length": 8, "embedding_dim": 16, "num_segments": 2,
          "dropout": 0.1, "mask_zero": True}


def test_contract(tmp_path):
    run_layer_test(TokenAndPositionEmbedding, CONFIG,
                   {"token_ids": IDS, "segment_ids": SEGMENTS}, (2, 5, 16), tmp_path)


def test_is_layer_norm_of_the_three_sums():
    layer = TokenAndPositionEmbedding(**CONFIG)
    output = np.asarray(layer(IDS, SEGMENTS))
    summed = (np.asarray(layer.token_embedding.embeddings)[IDS]
              + np.asarray(layer.position_embedding.position_embeddings)[:5]
              + np.asarray(layer.segment_embedding.embeddings)[SEGMENTS])
    mean = summed.mean(-1, keepdims=True)
    normalized = (summed - mean) / np.sqrt(summed.var(-1, keepdims=True) + 1e-12)
    np.testing.assert_allclose(output, normalized, atol=1e-4)


def test_missing_segments_mean_segment_zero():
    layer = TokenAndPositionEmbedding(**CONFIG)
    np.testing.assert_allclose(layer(IDS), layer(IDS, np.zeros_like(IDS)))


def test_padding_mask_flows_to_the_encoder():
    """Changing ids at padded positions leaves the outputs at real positions unchanged."""
    token_ids = keras.Input((None,), dtype="int32")
    x = TokenAndPositionEmbedding(20, 8, 16, mask_zero=True)(token_ids)
    x = TransformerEncoder(intermediate_dim=32, num_heads=2)(x)
    model = keras.Model(token_ids, x)
    padded = np.array([[5, 6, 7, 0, 0]])
    before = model.predict(padded, verbose=0)
    # With mask_zero the padded ids are 0 by definition, so vary the amount of padding.
    longer = model.predict(np.array([[5, 6, 7, 0, 0, 0, 0]]), verbose=0)
    np.testing.assert_allclose(longer[0, :3], before[0, :3], atol=1e-5)
    unmasked = keras.Model(token_ids, TransformerEncoder(intermediate_dim=32, num_heads=2)(
        TokenAndPositionEmbedding(20, 8, 16)(token_ids)))
    a = unmasked.predict(padded, verbose=0)
    b = unmasked.predict(np.array([[5, 6, 7, 0, 0, 0, 0]]), verbose=0)
    assert not np.allclose(a[0, :3], b[0, :3], atol=1e-5)  # without the mask, padding leaks
