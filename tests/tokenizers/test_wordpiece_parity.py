"""Token-for-token parity with Hugging Face's BertTokenizer: eager, tf.data, SavedModel."""

import random
import unicodedata

import pytest
import tensorflow as tf

from keras_mapping.tokenizers import BertTokenizer
from keras_mapping.tokenizers.wordpiece import split_words
from tests.tokenizers.conftest import mismatch_report


def test_eager_batch_matches_reference(minilm_tokenizer, reference_rows):
    ids = minilm_tokenizer.tokenize([row["text"] for row in reference_rows])
    assert isinstance(ids, tf.RaggedTensor) and ids.dtype == tf.int32
    count, message = mismatch_report(ids.to_list(), reference_rows)
    assert count == 0, message


def test_tf_data_matches_reference(minilm_tokenizer, reference_rows):
    texts = tf.data.Dataset.from_tensor_slices([row["text"] for row in reference_rows])
    batches = texts.batch(500).map(minilm_tokenizer, num_parallel_calls=tf.data.AUTOTUNE)
    got = [ids for batch in batches for ids in batch.to_list()]
    count, message = mismatch_report(got, reference_rows)
    assert count == 0, message


class _TokenizerModule(tf.Module):
    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(self, texts):
        return self.tokenizer.tokenize(texts)


def test_reloaded_saved_model_matches_reference(minilm_tokenizer, reference_rows, tmp_path):
    tf.saved_model.save(_TokenizerModule(minilm_tokenizer), str(tmp_path))
    reloaded = tf.saved_model.load(str(tmp_path))
    ids = reloaded.tokenize(tf.constant([row["text"] for row in reference_rows]))
    count, message = mismatch_report(ids.to_list(), reference_rows)
    assert count == 0, message


# Ids from the reference for cases the fixture does not cover.
EDGE_CASES = {
    # The reference lowercases "Σ" to "σ" even at the end of a word (ICU would give "ς").
    "ΟΔΟΣ ΣΟΦΟΣ": [1169, 29722, 29730, 29733, 1173, 29730, 29736, 29730, 29733],
    # Special tokens written in the text are found before normalisation, case-sensitively.
    "Paris is the [MASK] of France.": [3000, 2003, 1996, 103, 1997, 2605, 1012],
    "[mask] a[SEP]b [CLS]": [1031, 7308, 1033, 1037, 102, 1038, 101],
    "[MA\x00SK]": [1031, 7308, 1033],
    # The word limit counts characters: 60 two-byte letters pass, 101 do not.
    "ж" * 60: [1186] + [29743] * 59,
    "ж" * 101: [100],
    "x" * 100: [22038] + [20348] * 49,
    "x" * 101: [100],
    "a\x00b": [11113],
    # U+2B820 lies outside the reference's CJK ranges, U+2B920 inside.
    "a\U0002B820b a\U0002B920b": [100, 1037, 100, 1038],
    "zero\u200bwidth\xa0nbsp": [5717, 9148, 11927, 2232, 1050, 5910, 2361],
    "\u1885 \u166d \u1734": [100, 100],
}


def test_edge_cases_match_reference(minilm_tokenizer):
    texts = list(EDGE_CASES)
    got = minilm_tokenizer.tokenize(texts).to_list()
    rows = [{"text": text, "ids": EDGE_CASES[text]} for text in texts]
    count, message = mismatch_report(got, rows)
    assert count == 0, message


def test_invalid_utf8_is_dropped_like_replacement_characters(minilm_tokenizer):
    got = minilm_tokenizer.tokenize(tf.constant([b"caf\xe9 ok", "caf\ufffd ok"])).to_list()
    assert got == [[24689, 7929], [24689, 7929]]


def _oracle(lowercase, strip_accents):
    tokenizers = pytest.importorskip("tokenizers", reason="Rust reference `tokenizers` absent")
    normalizer = tokenizers.normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=strip_accents,
        lowercase=lowercase)
    splitter = tokenizers.pre_tokenizers.BertPreTokenizer()
    return lambda text: [w for w, _ in splitter.pre_tokenize_str(normalizer.normalize_str(text))]


@pytest.mark.parametrize("lowercase, strip_accents", [(True, None), (False, False)])
def test_every_unicode_3_2_character_normalises_like_the_rust_reference(lowercase,
                                                                         strip_accents):
    """Each character Unicode 3.2 assigned, inside and around a word. The reference's
    character tables are older than TensorFlow's, so characters assigned later may differ."""
    oracle = _oracle(lowercase, strip_accents)
    characters = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF
                  and unicodedata.ucd_3_2_0.category(chr(c)) != "Cn"]
    texts = [f"a{c}b {c}. X{c}" for c in characters]
    expected = [oracle(text) for text in texts]
    got = [[word.decode() for word in words] for words in
           split_words(texts, lowercase=lowercase, strip_accents=strip_accents).to_list()]
    bad = [(t, e, g) for t, e, g in zip(texts, expected, got) if e != g]
    assert not bad, f"{len(bad)} of {len(texts)} characters differ, e.g. {bad[:5]}"


POOL = (list("abcXYZ019 .,!?'-()[]#$^`~") + list("éÅßİΣςΟ€“”…—深学本のテ한ｆＦ😀🏽ﬁǅ")
        + ["\u0301", "\t", "\n", "\x00", "\x07", "\x85", "\xa0", "\u2009", "\u200b", "\ufeff",
           "\ufffd", "\u3000", "\ue000", "\u0378", "\U0002B920", "[MASK]", "[CLS]", "[mask]",
           "[unused1]", "##", "x" * 101, "é" * 60, "ж" * 70])


@pytest.mark.parametrize("lowercase, strip_accents, split_on_cjk",
                         [(True, None, True), (True, False, True), (False, True, False)])
def test_random_strings_match_rust_reference_ids(lowercase, strip_accents, split_on_cjk,
                                                 minilm_tokenizer):
    tokenizers = pytest.importorskip("tokenizers", reason="Rust reference `tokenizers` absent")
    vocabulary = minilm_tokenizer.get_vocabulary()
    reference = tokenizers.Tokenizer(tokenizers.models.WordPiece(
        {token: i for i, token in enumerate(vocabulary)}, unk_token="[UNK]"))
    reference.normalizer = tokenizers.normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=split_on_cjk, strip_accents=strip_accents,
        lowercase=lowercase)
    reference.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    reference.add_special_tokens([tokenizers.AddedToken(t, normalized=False, special=True)
                                  for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")])
    rng = random.Random(0)
    texts = ["".join(rng.choice(POOL) for _ in range(rng.randint(0, 30))) for _ in range(3000)]
    encodings = reference.encode_batch(texts, add_special_tokens=False)
    rows = [{"text": text, "ids": encoding.ids} for text, encoding in zip(texts, encodings)]
    tokenizer = BertTokenizer(vocabulary, lowercase=lowercase, strip_accents=strip_accents,
                              split_on_cjk=split_on_cjk)
    count, message = mismatch_report(tokenizer.tokenize(texts).to_list(), rows)
    assert count == 0, message
