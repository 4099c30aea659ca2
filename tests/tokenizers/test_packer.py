"""BertPacker and BertTextPreprocessor: exact packed arrays, truncation, config, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_mapping.checkpoints import resolve_preset
from keras_mapping.tokenizers import BertPacker, BertTextPreprocessor, BertTokenizer

A = [[1, 2, 3, 4, 5], [6]]
B = [[11, 12, 13], [14, 15, 16, 17, 18, 19]]


def packed(outputs):
    return {name: value.numpy().tolist() for name, value in outputs.items()}


def test_single_segment_is_cut_and_padded():
    packer = BertPacker(cls_token_id=101, sep_token_id=102, pad_token_id=0, max_length=5)
    assert packed(packer(tf.ragged.constant(A))) == {
        "token_ids": [[101, 1, 2, 3, 102], [101, 6, 102, 0, 0]],
        "segment_ids": [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
        "padding_mask": [[True] * 5, [True, True, True, False, False]],
    }


@pytest.mark.parametrize("truncate, first_row, first_segments", [
    ("round_robin", [101, 1, 2, 3, 102, 11, 12, 102], [0, 0, 0, 0, 0, 1, 1, 1]),
    ("longest_first", [101, 1, 2, 102, 11, 12, 13, 102], [0, 0, 0, 0, 1, 1, 1, 1]),
    ("waterfall", [101, 1, 2, 3, 4, 102, 11, 102], [0, 0, 0, 0, 0, 0, 1, 1]),
])
def test_pair_truncation_strategies(truncate, first_row, first_segments):
    # Room for 5 ids. Row 1 (4 + 5 ids) tells the strategies apart; in row 2 (1 + 6) the
    # short segment keeps its id with all of them.
    packer = BertPacker(101, 102, max_length=8, truncate=truncate)
    first, second = [[1, 2, 3, 4], [6]], [[11, 12, 13, 14, 15], [21, 22, 23, 24, 25, 26]]
    outputs = packed(packer((first, second)))
    assert outputs == {
        "token_ids": [first_row, [101, 6, 102, 21, 22, 23, 24, 102]],
        "segment_ids": [first_segments, [0, 0, 0, 1, 1, 1, 1, 1]],
        "padding_mask": [[True] * 8, [True] * 8],
    }


def test_pair_with_room_to_spare_and_dtypes():
    packer = BertPacker(101, 102, pad_token_id=7, max_length=12)
    outputs = packer((tf.ragged.constant(A, tf.int64), tf.ragged.constant(B, tf.int64)))
    assert {name: value.dtype for name, value in outputs.items()} == {
        "token_ids": tf.int32, "segment_ids": tf.int32, "padding_mask": tf.bool}
    assert packed(outputs) == {
        "token_ids": [[101, 1, 2, 3, 4, 5, 102, 11, 12, 13, 102, 7],
                      [101, 6, 102, 14, 15, 16, 17, 18, 19, 102, 7, 7]],
        "segment_ids": [[0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0],
                        [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0]],
        "padding_mask": [[True] * 11 + [False], [True] * 10 + [False, False]],
    }


def test_dynamic_length_pads_to_longest_without_cutting():
    packer = BertPacker(101, 102, max_length=None)
    outputs = packed(packer((A, B)))
    assert outputs["token_ids"] == [[101, 1, 2, 3, 4, 5, 102, 11, 12, 13, 102],
                                    [101, 6, 102, 14, 15, 16, 17, 18, 19, 102, 0]]
    assert outputs["padding_mask"][1] == [True] * 10 + [False]
    assert packed(packer([[1], [2, 3]]))["token_ids"] == [[101, 1, 102, 0], [101, 2, 3, 102]]


def test_pad_to_longest_truncates_but_pads_only_to_the_batch():
    packer = BertPacker(101, 102, max_length=6, pad_to_longest=True)
    assert packed(packer([[1], [2, 3]]))["token_ids"] == [[101, 1, 102, 0], [101, 2, 3, 102]]
    assert packed(packer([[1, 2, 3, 4, 5, 6, 7]]))["token_ids"] == [[101, 1, 2, 3, 4, 102]]
    assert BertPacker.from_config(packer.get_config()).pad_to_longest


def test_longest_first_is_the_default():
    assert BertPacker(101, 102).truncate == "longest_first"


def test_unbatched_inputs_give_unbatched_outputs():
    packer = BertPacker(101, 102, max_length=6)
    assert packed(packer(([1, 2], [3]))) == {
        "token_ids": [101, 1, 2, 102, 3, 102],
        "segment_ids": [0, 0, 0, 0, 1, 1],
        "padding_mask": [True] * 6,
    }


def test_packer_config_round_trip():
    packer = BertPacker(5, 6, pad_token_id=1, max_length=None, truncate="waterfall")
    clone = BertPacker.from_config(packer.get_config())
    assert clone.get_config() == packer.get_config()
    assert packed(clone((A, B))) == packed(packer((A, B)))


@pytest.mark.parametrize("kwargs, call_args, message", [
    (dict(truncate="longest"), None, r"`truncate` must be one of 'round_robin', "
                                      r"'longest_first', 'waterfall'; got 'longest'"),
    (dict(max_length=1), None, r"`max_length` must be None or an int of at least 2"),
    (dict(max_length=2), (A, B), r"max_length=2 leaves no room for the 3 special"),
    (dict(), (A, B, A), r"one segment or a pair of segments; got 3"),
    (dict(), ([1, 2], [[3]]), r"Both segments must be batched, or neither"),
    (dict(), [[[1]]], r"rank 1\) or of a batch \(rank 2\); got shape \(1, 1, 1\)"),
])
def test_packer_bad_input(kwargs, call_args, message):
    with pytest.raises(ValueError, match=message):
        packer = BertPacker(101, 102, **kwargs)
        packer(call_args)


@pytest.fixture
def preprocessor(tiny_vocab):
    return BertTextPreprocessor(BertTokenizer(tiny_vocab), max_length=8)


def test_preprocessor_strings_and_pairs(preprocessor):
    assert packed(preprocessor(["The cat sat.", "mat"]))["token_ids"] == [
        [2, 5, 6, 7, 11, 3, 0, 0], [2, 9, 3, 0, 0, 0, 0, 0]]
    pair = packed(preprocessor((["the cat"], ["sat on the mat!"])))
    assert pair == {"token_ids": [[2, 5, 6, 3, 7, 8, 5, 3]],
                    "segment_ids": [[0, 0, 0, 0, 1, 1, 1, 1]],
                    "padding_mask": [[True] * 8]}
    assert packed(preprocessor("cats"))["token_ids"] == [2, 6, 12, 3, 0, 0, 0, 0]


def test_preprocessor_in_tf_data_matches_eager(preprocessor):
    first, second = ["the cat sat", "mat", "cats on mats"], ["on the mat", "sat", "!"]
    pairs = tf.data.Dataset.from_tensor_slices((first, second)).batch(2)
    mapped = pairs.map(lambda a, b: preprocessor((a, b)))
    got = np.concatenate([batch["token_ids"].numpy() for batch in mapped])
    np.testing.assert_array_equal(got, preprocessor((first, second))["token_ids"].numpy())


def test_preprocessor_config_round_trip(preprocessor):
    config = preprocessor.get_config()
    clone = BertTextPreprocessor.from_config(config)
    assert clone.get_config() == config
    assert packed(clone(["the cats"])) == packed(preprocessor(["the cats"]))


def test_keras_model_with_preprocessor_saves_and_loads(preprocessor, tmp_path):
    text = keras.Input(shape=(), dtype="string")
    features = preprocessor(text)
    embedded = keras.layers.Embedding(16, 4)(features["token_ids"])
    pooled = keras.layers.GlobalAveragePooling1D()(embedded, mask=features["padding_mask"])
    model = keras.Model(text, keras.layers.Dense(2)(pooled))
    batch = tf.constant(["the cat sat on the mat", "cats!"])
    expected = model(batch).numpy()

    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(reloaded(batch).numpy(), expected, atol=1e-6)
    assert isinstance(reloaded.layers[1], BertTextPreprocessor)
    assert reloaded.layers[1].tokenizer.get_vocabulary() == preprocessor.tokenizer.get_vocabulary()


def test_longest_first_matches_rust_reference_on_fixture_pairs(reference_rows):
    tokenizers = pytest.importorskip("tokenizers", reason="Rust reference `tokenizers` absent")
    texts = [row["text"] for row in reference_rows]
    first, second = texts[0::2], texts[1::2]
    # Odd and even room; very short lengths make the reference slow (it keeps the overflow).
    for length in (16, 33, 64):
        preprocessor = BertTextPreprocessor.from_preset("minilm_l6", max_length=length,
                                                        truncate="longest_first")
        reference = tokenizers.Tokenizer.from_file(
            str(resolve_preset("minilm_l6") / "tokenizer.json"))
        reference.enable_truncation(max_length=length, strategy="longest_first")
        reference.enable_padding(length=length)
        encodings = reference.encode_batch(list(zip(first, second)))
        outputs = preprocessor((first, second))
        expected_ids = np.array([encoding.ids for encoding in encodings])
        expected_segments = np.array([encoding.type_ids for encoding in encodings])
        differ = (outputs["token_ids"].numpy() != expected_ids).any(axis=1)
        differ |= (outputs["segment_ids"].numpy() != expected_segments).any(axis=1)
        assert not differ.any(), (
            f"max_length={length}: {differ.sum()} of {len(first)} pairs differ, e.g. "
            f"{first[differ.argmax()]!r} + {second[differ.argmax()]!r}")
