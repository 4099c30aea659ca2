"""Training a WordPiece vocabulary with the tokenizer's own normalisation."""

from pathlib import Path

import pytest
import tensorflow as tf

from keras_mapping.tokenizers import BertTokenizer, train_wordpiece_vocabulary
from tests.tokenizers.conftest import SPECIALS

CORPUS = ["The CAT sat on the mat.", "Café crème, naïve bats!", "The bat sat!"] * 40


def test_specials_first_and_words_round_trip():
    tokens = train_wordpiece_vocabulary(CORPUS, 60)
    assert tokens[:5] == SPECIALS
    assert len(tokens) <= 60 and len(set(tokens)) == len(tokens)
    # Learnt on normalised words: lowercase, accents stripped.
    assert {"the", "cat", "cafe", "creme", "naive"} <= set(tokens)
    assert not any(any(c.isupper() or c in "éè" for c in token) for token in tokens[5:])
    tokenizer = BertTokenizer(tokens)
    text = tf.constant(["the cat sat on the mat", "naive bats"])
    assert tokenizer.detokenize(tokenizer.tokenize(text)).numpy().tolist() == [
        b"the cat sat on the mat", b"naive bats"]
    assert tokenizer.tokenize("Café").numpy().tolist() == [tokens.index("cafe")]


def test_cased_training_keeps_case_and_accents():
    tokens = train_wordpiece_vocabulary(CORPUS, 60, lowercase=False)
    assert {"The", "CAT", "Café"} <= set(tokens)


def test_files_and_datasets_and_reserved_tokens(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    from_file = train_wordpiece_vocabulary([corpus], 60, reserved_tokens=["[unused0]"])
    assert from_file[:6] == SPECIALS + ["[unused0]"]
    from_texts = train_wordpiece_vocabulary(CORPUS, 60, reserved_tokens=["[unused0]"])
    assert from_file == from_texts
    dataset = tf.data.Dataset.from_tensor_slices(CORPUS).batch(7)
    assert train_wordpiece_vocabulary(dataset, 60) == train_wordpiece_vocabulary(CORPUS, 60)


def test_writes_vocab_file_atomically(tmp_path):
    path = tmp_path / "out" / "vocab.txt"
    tokens = train_wordpiece_vocabulary(CORPUS, 60, output_path=path)
    assert path.read_text(encoding="utf-8") == "".join(f"{token}\n" for token in tokens)
    assert [p.name for p in path.parent.iterdir()] == ["vocab.txt"]  # no temp file left
    assert BertTokenizer(path).get_vocabulary() == tokens


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "vocab.txt"
    path.write_text("old\n", encoding="utf-8")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr("keras_mapping.tokenizers.vocabulary.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        train_wordpiece_vocabulary(CORPUS, 60, output_path=path)
    assert path.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.txt"]


@pytest.mark.parametrize("corpus, size, error, message", [
    ([], 60, ValueError, r"`texts_or_files` is empty"),
    (["   ", "\t\x07"], 60, ValueError, r"The corpus holds no words"),
    (CORPUS, 5, ValueError, r"vocabulary_size=5 leaves no room for word pieces after the 5 "),
    ([Path("/nowhere/corpus.txt")], 60, FileNotFoundError,
     r"Corpus file '/nowhere/corpus\.txt' does not exist"),
])
def test_bad_input(corpus, size, error, message):
    with pytest.raises(error, match=message):
        train_wordpiece_vocabulary(corpus, size)
