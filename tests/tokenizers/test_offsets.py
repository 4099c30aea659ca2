"""BertTokenizer's word ids and character spans: `tokenize_with_offsets`, `tokenize_words`."""

import unicodedata

import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_mapping.tokenizers import BertTokenizer
from tests.tokenizers.conftest import SPECIALS

TEXTS = [
    "EU rejects German call to boycott British lamb.",
    "Hello, world! (It's 3:30pm; ok?)",
    "Café naïve ÅNGSTRÖM",  # precomposed accents
    "cafe\u0301 nai\u0308ve",  # decomposed accents
    "東京タワーは高い",  # CJK ideographs alone, kana in words
    "I ❤️ 😀 emoji🏽 NY",  # outside the BMP, variation selector, skin tone
    "tabs\tand  spaces\n\nnew\r\nlines \u3000 wide",
    "zero\u200bwidth soft\u00adhyphen \u200bleading trailing\u200b",
    "bell\x07inside \x07 alone",
    "Paris is the [MASK] of France.",
    "a[SEP]b [mask] [CLS]",
    "",
    "   ",
    "x" * 120 + " short",
    "İstanbul ΟΔΟΣ Straße ﬁne",
    "unflinchingly antidisestablishmentarianism",
]


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer.from_preset("minilm_l6")


def _normalised(raw):
    """The tokenizer's uncased normalisation of a span, in Python: no controls, no accents."""
    kept = "".join(c for c in raw if c in "\t\n\r" or unicodedata.category(c)[0] != "C")
    decomposed = unicodedata.normalize("NFD", kept)
    # Like the reference, "Σ" lowercases to "σ" even at the end of a word.
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return stripped.replace("Σ", "σ").lower()


def _rows(result):
    keys = ("token_ids", "word_ids", "start", "end")
    return [list(zip(*(result[key][row].numpy().tolist() for key in keys)))
            for row in range(result["token_ids"].nrows())]


def _check_layout(pieces, length):
    """Word ids count up from 0 in steps of one; spans are ordered and inside the text."""
    word_ids = [word for _, word, _, _ in pieces]
    assert word_ids[:1] in ([], [0])
    assert all(b - a in (0, 1) for a, b in zip(word_ids, word_ids[1:]))
    for (_, _, start, end), (_, _, next_start, next_end) in zip(pieces, pieces[1:]):
        assert start <= next_start and end <= next_end
    assert all(0 <= start < end <= length for _, _, start, end in pieces)


def test_ids_equal_tokenize_and_pieces_come_from_their_spans(tokenizer):
    result = tokenizer.tokenize_with_offsets(TEXTS)
    assert result["token_ids"].to_list() == tokenizer.tokenize(TEXTS).to_list()
    assert result["word_ids"].dtype == tf.int32 and result["start"].dtype == tf.int64
    for text, pieces in zip(TEXTS, _rows(result)):
        _check_layout(pieces, len(text))
        for token_id, _, start, end in pieces:
            token = tokenizer.id_to_token(token_id)
            if token in SPECIALS:
                assert token == "[UNK]" or text[start:end] == token
            else:
                assert token.removeprefix("##") == _normalised(text[start:end]), (text, token)


def test_spans_by_hand(tokenizer):
    def spans(text):
        result = tokenizer.tokenize_with_offsets(text)
        return [text[start:end] for start, end in zip(result["start"].numpy(),
                                                      result["end"].numpy())]

    assert spans("café") == ["café"] and spans("cafe\u0301") == ["cafe\u0301"]
    # Dropped characters inside a word go with the piece before them, so the pieces tile
    # the word; before or after a word they belong to no piece (accents excepted).
    assert spans("\u200bsoft\u00adhyphen\u200b!") == ["soft\u00ad", "hy", "ph", "en", "!"]
    assert spans("a\t\tb  \n c") == ["a", "b", "c"]
    assert spans("I ❤️ 😀 NY") == ["I", "❤️", "😀", "NY"]
    assert spans("東京タワー") == ["東", "京", "タ", "ワ", "ー"]
    assert spans("x" * 101 + " ok") == ["x" * 101, "ok"]  # one [UNK] for the whole word
    assert spans("the [MASK]!") == ["the", "[MASK]", "!"]
    assert spans("[MA\x00SK]") == ["[", "MA\x00SK", "]"]  # a broken special token is words
    empty = tokenizer.tokenize_with_offsets("")
    assert all(value.shape == (0,) for value in empty.values())


def test_untraceable_word_gets_its_whole_span(tiny_vocab):
    # NFD puts these two spacing marks in the other order, so the word's characters do not
    # normalise one by one as they do together: every piece spans the whole word.
    tokenizer = BertTokenizer(tiny_vocab + ["x", "##\U00016ff0", "##\u1715", "##y"])
    result = tokenizer.tokenize_with_offsets("the x\u1715\U00016ff0y")
    assert result["token_ids"].numpy().tolist() == tokenizer.tokenize(
        "the x\u1715\U00016ff0y").numpy().tolist()
    assert len(result["token_ids"]) == 5
    assert list(zip(result["start"].numpy(), result["end"].numpy()))[1:] == [(4, 8)] * 4


def test_other_settings_and_input_shapes(tiny_vocab):
    tokenizer = BertTokenizer(tiny_vocab, lowercase=False, special_tokens_in_strings=False)
    texts = [["the cat [MASK]", "The mat"], ["sat!"]]
    result = tokenizer.tokenize_with_offsets(texts)
    assert result["token_ids"].to_list() == tokenizer.tokenize(texts).to_list()
    assert result["word_ids"].to_list() == [[[0, 1, 2, 3, 4], [0, 1]], [[0, 1]]]
    assert result["start"].to_list() == [[[0, 4, 8, 9, 13], [0, 4]], [[0, 3]]]
    assert result["end"].to_list() == [[[3, 7, 9, 13, 14], [3, 7]], [[3, 4]]]


def test_agrees_with_the_rust_reference_on_plain_text(tokenizer):
    tokenizers = pytest.importorskip("tokenizers", reason="Rust reference `tokenizers` absent")
    reference = tokenizers.Tokenizer(tokenizers.models.WordPiece(
        {token: i for i, token in enumerate(tokenizer.get_vocabulary())}, unk_token="[UNK]"))
    reference.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=True)
    reference.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    # The reference leaves dropped characters out of spans, so compare text without them.
    texts = [TEXTS[i] for i in (0, 1, 2, 4, 6, 13, 14, 15)]
    encodings = reference.encode_batch(texts, add_special_tokens=False)
    for pieces, encoding in zip(_rows(tokenizer.tokenize_with_offsets(texts)), encodings):
        assert [(start, end) for _, _, start, end in pieces] == encoding.offsets
        assert [word for _, word, _, _ in pieces] == encoding.word_ids


CONLL = ["EU", "rejects", "German", "call", "1996-08-22", "U.S."]


def test_tokenize_words_labels_given_words(tokenizer):
    result = tokenizer.tokenize_words([CONLL, ["\x07", "", "Peter", "Blackburn"]])
    assert result["token_ids"][0].numpy().tolist() == tokenizer.tokenize(
        " ".join(CONLL)).numpy().tolist()
    # 1996 - 08 - 22 are five basic words of one given word, as are u . s .
    assert result["word_ids"].to_list()[0] == [0, 1, 2, 3, 4, 4, 4, 4, 4, 5, 5, 5, 5]
    assert result["first_piece"].to_list()[0] == [True] * 5 + [False] * 4 + [True] + [False] * 3
    assert result["basic_word_ids"].to_list()[0] == list(range(13))
    # Words that normalise to nothing give no pieces: their ids are absent.
    pieces = [tokenizer.id_to_token(i) for i in result["token_ids"][1].numpy()]
    assert pieces == ["peter", "blackburn"]
    assert result["word_ids"].to_list()[1] == [2, 3]
    assert result["basic_word_ids"].to_list()[1] == [0, 1]
    assert result["first_piece"].to_list()[1] == [True, True]
    with pytest.raises(ValueError, match="rank 0"):
        tokenizer.tokenize_words("EU")
    single = tokenizer.tokenize_words(CONLL)
    assert single["word_ids"].numpy().tolist() == result["word_ids"].to_list()[0]
    assert single["first_piece"].dtype == tf.bool and single["word_ids"].dtype == tf.int32


def test_tokenize_words_splits_subwords(tokenizer):
    result = tokenizer.tokenize_words(["unflinchingly", "bleak"])
    assert result["word_ids"].numpy().tolist() == [0, 0, 0, 0, 0, 1]
    assert result["first_piece"].numpy().tolist() == [True, False, False, False, False, True]
    assert result["basic_word_ids"].numpy().tolist() == [0, 0, 0, 0, 0, 1]


def _as_lists(result):
    return {key: value.to_list() for key, value in result.items()}


def test_graph_modes_match_eager(tokenizer, tmp_path):
    texts = TEXTS[:10]
    eager = _as_lists(tokenizer.tokenize_with_offsets(texts))

    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.tokenizer = tokenizer

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def offsets(self, batch):
            return self.tokenizer.tokenize_with_offsets(batch)

    assert _as_lists(Module().offsets(tf.constant(texts))) == eager
    tf.saved_model.save(Module(), str(tmp_path))
    assert _as_lists(tf.saved_model.load(str(tmp_path)).offsets(tf.constant(texts))) == eager

    dataset = tf.data.Dataset.from_tensor_slices(texts)
    per_text = [{key: value.numpy().tolist() for key, value in row.items()}
                for row in dataset.map(tokenizer.tokenize_with_offsets)]
    assert [row["start"] for row in per_text] == eager["start"]
    batched = next(iter(dataset.batch(10).map(tokenizer.tokenize_with_offsets)))
    assert _as_lists(batched) == eager

    sentences = tf.data.Dataset.from_tensor_slices(tf.ragged.constant([CONLL, ["Peter"]]))
    labelled = [row["word_ids"].numpy().tolist() for row in sentences.map(
        tokenizer.tokenize_words)]
    assert labelled == [[0, 1, 2, 3, 4, 4, 4, 4, 4, 5, 5, 5, 5], [0]]


# Any code point except surrogates, which UTF-8 cannot encode.
UNICODE_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
MIXED_TEXT = st.lists(st.sampled_from(
    ["a", "Zu", "é", "e\u0301", " ", "\t", ".", "-", "東", "😀", "\u200b", "\u00ad", "\x07",
     "[MASK]", "[", "İ", "ß", "ﬁ", "\U0002B920"]), max_size=30).map("".join)


@settings(max_examples=40, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(st.one_of(UNICODE_TEXT, MIXED_TEXT), min_size=1, max_size=4))
def test_random_text_ids_and_spans(tokenizer, texts):
    result = tokenizer.tokenize_with_offsets(texts)
    assert result["token_ids"].to_list() == tokenizer.tokenize(texts).to_list()
    for text, pieces in zip(texts, _rows(result)):
        _check_layout(pieces, len(text))
