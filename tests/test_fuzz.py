"""Arbitrary Unicode through the tokenizer, the packer and an exported serving signature:
no crash, valid shapes, ids always in the vocabulary (hypothesis, seeded and bounded)."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_mapping.tokenizers import BertTextPreprocessor, BertTokenizer

FUZZ = settings(max_examples=80, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
# Any code point except surrogates, which UTF-8 cannot encode.
UNICODE_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)
MAX_LENGTH = 24


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer.from_preset("minilm_l6")


@pytest.fixture(scope="module")
def preprocessor(tokenizer):
    return BertTextPreprocessor(tokenizer, max_length=MAX_LENGTH)


@FUZZ
@given(text=UNICODE_TEXT)
def test_tokenizer_ids_stay_in_the_vocabulary(tokenizer, text):
    ids = tokenizer.tokenize(text).numpy()
    assert ids.ndim == 1
    assert ((ids >= 0) & (ids < tokenizer.vocabulary_size())).all()
    if not text.strip():
        assert ids.size == 0


@FUZZ
@given(texts=st.lists(UNICODE_TEXT, min_size=1, max_size=4),
       pairs=st.lists(UNICODE_TEXT, min_size=4, max_size=4))
def test_packed_rows_are_well_formed(preprocessor, tokenizer, texts, pairs):
    for inputs in (tf.constant(texts), (tf.constant(texts), tf.constant(pairs[:len(texts)]))):
        packed = {name: value.numpy() for name, value in preprocessor(inputs).items()}
        assert packed["token_ids"].shape == (len(texts), MAX_LENGTH)
        for ids, segments, mask in zip(packed["token_ids"], packed["segment_ids"],
                                       packed["padding_mask"]):
            length = int(mask.sum())
            assert mask[:length].all() and not mask[length:].any()
            assert ids[0] == tokenizer.cls_token_id and ids[length - 1] == tokenizer.sep_token_id
            assert (ids[length:] == tokenizer.pad_token_id).all()
            assert ((ids >= 0) & (ids < tokenizer.vocabulary_size())).all()
            assert set(np.unique(segments[:length])) <= {0, 1}


@pytest.fixture(scope="module")
def serving(tiny_model_dir, tmp_path_factory):
    from keras_mapping.export import export_model

    out = tmp_path_factory.mktemp("fuzz_export") / "savedmodel"
    artifact = export_model(tiny_model_dir, out)
    return tf.saved_model.load(str(artifact)).signatures["serving_default"]


@settings(max_examples=40, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(texts=st.lists(UNICODE_TEXT, min_size=1, max_size=5))
def test_exported_signature_answers_any_text(serving, texts):
    outputs = serving(text=tf.constant(texts))
    probabilities = outputs["probabilities"].numpy()
    assert probabilities.shape == (len(texts), 2)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)
    assert outputs["label_id"].numpy().tolist() == probabilities.argmax(1).tolist()
