"""Corpus files and documents (keras_mapping/data/corpus.py): the document convention, gzip,
document keys, and errors named by file and line, found before a run writes anything."""

import gzip

import pytest

from keras_mapping.data.corpus import (DOCUMENT_KEY_CHARACTERS, FIRST_LINES_CHECKED,
                                       CorpusError, document_key, open_corpus, sentence_records)
from tests.helpers import corpus_documents, write_corpus


def documents_of(path, on_bad_bytes="error"):
    """The documents of a file, regrouped from its records by their positions."""
    documents = []
    for sentence, key, position in sentence_records(path, on_bad_bytes):
        if position == 0:
            documents.append(([], key))
        documents[-1][0].append(sentence)
    return [sentences for sentences, _ in documents]


def test_documents_are_separated_by_blank_lines(write):
    text = write("a.txt", "One.\n  Two.  \n\n \n\nThree.\n")
    assert documents_of(text) == [["One.", "Two."], ["Three."]]
    assert documents_of(write("solo.txt", "Line one.\nLine two.")) == [["Line one.", "Line two."]]


def test_gzip_files_read_like_text_whatever_their_name(tmp_path):
    documents = corpus_documents(6, seed=1)
    plain = write_corpus(tmp_path / "plain.txt", documents)
    expected = list(sentence_records(plain))
    assert list(sentence_records(write_corpus(tmp_path / "a.txt.gz", documents, True))) \
        == expected
    # Recognised by its magic bytes, not its name.
    assert list(sentence_records(write_corpus(tmp_path / "b.data", documents, True))) \
        == expected


def test_document_keys_come_from_text_not_position(write):
    first = write("first.txt", "Intro.\nAlpha.\n\nIntro.\nBeta.\n")
    second = write("second.txt", "Intro.\nBeta.\n\nIntro.\nAlpha.\n")

    def keys(path):  # the key of each document, by its last sentence
        return {sentence: key for sentence, key, position in sentence_records(path)
                if position == 1}

    assert keys(first) == keys(second)
    # A common first line does not make documents the same.
    assert keys(first)["Alpha."] != keys(first)["Beta."]
    assert keys(first)["Alpha."] == document_key(["Intro.", "Alpha."])


def test_a_long_document_is_keyed_by_its_opening_and_streamed(write):
    line = "x" * 1000
    count = 3 * DOCUMENT_KEY_CHARACTERS // 1000
    records = list(sentence_records(write("long.txt", f"{line}\n" * count)))
    opening = [line] * (DOCUMENT_KEY_CHARACTERS // 1000 + 1)  # up to the line past the bound
    assert [position for *_, position in records] == list(range(count))
    assert {key for _, key, _ in records} == {document_key(opening)}


def test_folders_are_read_sorted_and_kinds_are_not_mixed(tmp_path, write):
    write("corpus/b.txt", "B.\n")
    write("corpus/a.txt.gz", gzip.compress(b"A.\n"))
    write("corpus/notes.md", "ignored\n")
    assert [path.name for path in open_corpus([tmp_path / "corpus"]).files] == [
        "a.txt.gz", "b.txt"]
    write("corpus/c.tfrecord", b"")
    with pytest.raises(CorpusError, match="mixes text files and TFRecord shards"):
        open_corpus([tmp_path / "corpus"])


@pytest.mark.parametrize("name, content, message", [
    ("weights.bin", b"fine line\n\x00\x01\x02binary\n", r"weights.bin:2: NUL byte"),
    ("latin.txt", b"ok\ncaf\xe9\n", r"latin.txt:2: invalid UTF-8 .*--on-bad-bytes replace"),
    # mtime=0: the same bytes in every pytest-xdist worker, which must collect alike.
    ("cut.txt.gz", gzip.compress(b"one\n" * 5000, mtime=0)[:-40],
     r"cut.txt.gz: compressed data is corrupt or cut short after line"),
    ("text.tfrecord", b"this is text, not records\n", r"text.tfrecord: not a TFRecord shard"),
])
def test_bad_files_are_named_up_front(write, name, content, message):
    with pytest.raises(CorpusError, match=message):
        open_corpus([write(name, content)])


def test_bad_bytes_can_be_replaced(write):
    latin = write("latin.txt", b"ok\ncaf\xe9\n")
    corpus = open_corpus([latin], on_bad_bytes="replace")
    assert documents_of(corpus.files[0], corpus.on_bad_bytes) == [["ok", "caf\ufffd"]]
    with pytest.raises(ValueError, match="on_bad_bytes must be 'error' or 'replace'"):
        open_corpus([latin], on_bad_bytes="ignore")


def test_only_the_start_of_a_file_is_checked_up_front(write):
    late = write("late.txt", b"fine .\n" * FIRST_LINES_CHECKED + b"caf\xe9\n")
    open_corpus([late])  # cheap whatever the size: the bad line is found when streamed
    with pytest.raises(CorpusError, match=rf"late.txt:{FIRST_LINES_CHECKED + 1}: invalid"):
        list(sentence_records(late))


def test_missing_paths_and_empty_folders_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        open_corpus([tmp_path / "missing.txt"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match=r"holds no \*.txt, \*.txt.gz or \*.tfrecord files"):
        open_corpus([tmp_path / "empty"])
