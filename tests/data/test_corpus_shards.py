"""`shard_corpus` and `keras-mapping shard-corpus`: TFRecord shards of whole documents, a
manifest of counts, written atomically, with errors named before anything is left behind."""

import json
import re

import pytest

from keras_mapping.cli.main import main
from keras_mapping.data.corpus import CorpusError, open_corpus, sentence_records
from keras_mapping.data.corpus_shards import MANIFEST_FILE, shard_corpus
from keras_mapping.data.corpus_stream import corpus_records
from tests.helpers import cli_json, corpus_documents, write_corpus


def shard_documents(path):
    """The documents of one shard as tuples of sentences, in the order they are stored."""
    documents = []
    for chunk in corpus_records(open_corpus([path])):
        for sentence, position in zip(chunk["sentence"].numpy(), chunk["position"].numpy()):
            if position == 0:
                documents.append(())
            documents[-1] += (sentence.decode(),)
    return documents


def test_shards_hold_whole_documents_dealt_in_turn(tmp_path):
    documents = corpus_documents(7, sentences=3)
    corpus = write_corpus(tmp_path / "corpus.txt", documents)
    manifest = shard_corpus([corpus], tmp_path / "shards", shards=3)
    names = [shard["file"] for shard in manifest["shards"]]
    assert names == [f"corpus-0000{i}-of-00003.tfrecord" for i in range(3)]
    stored = [shard_documents(tmp_path / "shards" / name) for name in names]
    assert stored == [[tuple(d) for d in documents[i::3]] for i in range(3)]
    assert [shard["documents"] for shard in manifest["shards"]] == [3, 2, 2]
    assert (manifest["documents"], manifest["sentences"]) == (7, 21)
    assert [shard["bytes"] for shard in manifest["shards"]] == [
        (tmp_path / "shards" / name).stat().st_size for name in names]
    assert json.loads((tmp_path / "shards" / MANIFEST_FILE).read_text()) == manifest


def test_shard_megabytes_starts_new_shards_at_document_boundaries(tmp_path):
    documents = corpus_documents(40, sentences=4, words=30)
    corpus = write_corpus(tmp_path / "corpus.txt", documents)
    manifest = shard_corpus([corpus], tmp_path / "shards", shard_megabytes=0.002)
    assert len(manifest["shards"]) > 3
    # Each shard passes the limit by less than one document.
    assert all(shard["bytes"] < 2 * 0.002 * 2**20 for shard in manifest["shards"])
    stored = [document for shard in manifest["shards"]
              for document in shard_documents(tmp_path / "shards" / shard["file"])]
    assert stored == [tuple(document) for document in documents]


def test_a_bad_byte_mid_file_leaves_nothing_behind(tmp_path, write):
    good = write_corpus(tmp_path / "good.txt", corpus_documents(30))
    bad = write("bad.txt", b"fine .\n" * 2000 + b"caf\xe9\n")
    out = tmp_path / "shards"
    with pytest.raises(CorpusError, match="bad.txt:2001: invalid UTF-8"):
        shard_corpus([good, bad], out, shards=2)
    assert not out.exists()
    out.mkdir()
    with pytest.raises(CorpusError, match="bad.txt:2001"):
        shard_corpus([good, bad], out, shards=2)
    assert list(out.iterdir()) == []  # no shard, no temporary file


def test_shard_corpus_through_the_cli(tmp_path, capsys):
    documents = corpus_documents(9, sentences=2)
    corpus = write_corpus(tmp_path / "texts" / "a.txt.gz", documents, compress=True)
    (summary,) = cli_json(capsys, "shard-corpus", "--corpus", corpus.parent, "--out",
                          tmp_path / "shards", "--shards", 2)
    assert summary == {"out": str(tmp_path / "shards"), "shards": 2, "documents": 9,
                       "sentences": 18, "bytes": summary["bytes"]}
    stored = sorted(sentence for path in sorted((tmp_path / "shards").glob("*.tfrecord"))
                    for document in shard_documents(path) for sentence in document)
    assert stored == sorted(sentence for sentence, *_ in sentence_records(corpus))


@pytest.mark.parametrize("case, message", [
    ("out holds shards", "already holds corpus shards"),
    ("no shards", "`shards` must be at least 1"),
    ("corpus is shards", "is already a TFRecord shard; shard-corpus reads text files"),
    ("missing corpus", "Corpus path .*nowhere.txt' does not exist"),
    ("empty corpus", r"The corpus \(1 text file .*\) holds no text"),
])
def test_shard_corpus_errors_through_the_cli(tmp_path, capsys, case, message):
    corpus = write_corpus(tmp_path / "a.txt", corpus_documents(3))
    blank = write_corpus(tmp_path / "blank.txt", [[" "], [""]])
    shards, more = tmp_path / "shards", tmp_path / "more"
    shard_corpus([corpus], shards)
    corpus_out_flags = {"out holds shards": (corpus, shards, "--shards", 2),
                        "no shards": (corpus, more, "--shards", 0),
                        "corpus is shards": (shards, more),
                        "missing corpus": (tmp_path / "nowhere.txt", more),
                        "empty corpus": (blank, more)}[case]
    given, out, *flags = map(str, corpus_out_flags)
    assert main(["shard-corpus", "--corpus", given, "--out", out, *flags]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not more.exists()


def test_shards_and_megabytes_are_exclusive(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["shard-corpus", "--corpus", "a.txt", "--out", str(tmp_path), "--shards", "2",
              "--shard-megabytes", "1"])
    assert "not allowed with argument" in capsys.readouterr().err
