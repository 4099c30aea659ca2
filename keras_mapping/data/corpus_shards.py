"""A text corpus stored as TFRecord shards of sentences, for `keras-mapping shard-corpus`.

Each record is a `tf.train.Example` of one sentence with its document's key and its position
in the document (`sentence`, `document`, `position`), the same records that reading the text
gives (`keras_mapping.data.corpus.sentence_records`): shards and text train alike. A document
is never split between shards. Shards are written under temporary names and renamed only
when the whole corpus has been read, then `manifest.json` (counts per shard) is written last:
a folder with a manifest is complete, and an error leaves no shard behind.
"""

import os
from pathlib import Path

import tensorflow as tf

from keras_mapping.checkpoints import model_dir
from keras_mapping.data.corpus import (DOCUMENT_KEY_CHARACTERS, RECORD_CHUNK, SHARD_SUFFIX,
                                       CorpusError, open_corpus, sentence_records)

MANIFEST_FILE = "manifest.json"
DEFAULT_SHARD_MEGABYTES = 128
TFRECORD_FRAMING = 16  # bytes around each record: its length and two checksums
RECORD_FEATURES = {"sentence": tf.io.FixedLenFeature([], tf.string),
                   "document": tf.io.FixedLenFeature([], tf.int64),
                   "position": tf.io.FixedLenFeature([], tf.int64)}


def shard_corpus(paths, out, shards=None, shard_megabytes=None, on_bad_bytes="error"):
    """Writes a text corpus as TFRecord shards in `out`, streaming it.

    Args:
        paths: text files (gzip'd or not) or folders of them, as for `pretrain`.
        out: the folder of shards; created, or empty of shards and manifest.
        shards: write this many shards, documents dealt to them in turn (balanced, for
            splitting a corpus between workers).
        shard_megabytes: else start a new shard at the first document after this many
            megabytes (default `DEFAULT_SHARD_MEGABYTES`).
        on_bad_bytes: "error" stops at bytes that are not UTF-8, naming the file and line;
            "replace" reads them as U+FFFD.

    Returns:
        The manifest: `documents`, `sentences`, `bytes` (of the shard files), and per shard
        its `file`, `documents`, `sentences` and `bytes`.

    Raises:
        ValueError: both or invalid `shards` and `shard_megabytes`.
        FileExistsError: `out` already holds shards or a manifest.
        CorpusError, FileNotFoundError: as for `open_corpus`, or a corpus without text.

    Example:
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_text("One.\\nTwo.\\n\\nThree.\\n")
    >>> manifest = shard_corpus([folder / "a.txt"], folder / "shards", shards=2)
    >>> manifest["documents"], [shard["sentences"] for shard in manifest["shards"]]
    (2, [2, 1])
    """
    out = Path(out)
    corpus = _checked_request(paths, out, shards, shard_megabytes, on_bad_bytes)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    writers = _ShardWriters(out, shards, (shard_megabytes or DEFAULT_SHARD_MEGABYTES) * 2**20)
    try:
        for path in corpus.files:
            for sentence, key, position in sentence_records(path, on_bad_bytes):
                writers.write(_serialized(sentence, key, position), position == 0)
        if not sum(writer.sentences for writer in writers.all):
            raise CorpusError(f"The corpus ({corpus.describe()}) holds no text.")
        published = writers.publish()
    except BaseException:
        writers.discard()
        if created and not any(out.iterdir()):
            out.rmdir()
        raise
    manifest = {"documents": sum(shard["documents"] for shard in published),
                "sentences": sum(shard["sentences"] for shard in published),
                "bytes": sum(shard["bytes"] for shard in published),
                "document_key_characters": DOCUMENT_KEY_CHARACTERS,
                "sources": [str(path) for path in corpus.files], "shards": published}
    model_dir.write_json_atomically(out / MANIFEST_FILE, manifest)
    return manifest


def _checked_request(paths, out, shards, shard_megabytes, on_bad_bytes):
    """The text corpus to shard, once the request is known to be valid."""
    if shards is not None and shard_megabytes is not None:
        raise ValueError("give `shards` or `shard_megabytes`, not both.")
    if (shards is not None and shards < 1) or (shard_megabytes is not None
                                                and shard_megabytes <= 0):
        raise ValueError(f"`shards` must be at least 1 and `shard_megabytes` positive; got "
                         f"{shards} and {shard_megabytes}.")
    corpus = open_corpus(paths, on_bad_bytes)
    if corpus.shards:
        raise CorpusError(f"{corpus.files[0]} is already a TFRecord shard; shard-corpus "
                          "reads text files.")
    if out.is_dir() and ((out / MANIFEST_FILE).exists() or any(out.glob("*" + SHARD_SUFFIX))):
        raise FileExistsError(f"'{out}' already holds corpus shards; choose another --out.")
    return corpus


def _serialized(sentence, key, position):
    def integer(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    return tf.train.Example(features=tf.train.Features(feature={
        "sentence": tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[sentence.encode("utf-8")])),
        "document": integer(key), "position": integer(position)})).SerializeToString()


class _ShardWriter:
    """One shard being written under a temporary name, with its counts."""

    def __init__(self, path):
        self.path, self.documents, self.sentences, self.bytes = path, 0, 0, 0
        self.writer = tf.io.TFRecordWriter(str(path))

    def write(self, record, starts_document):
        self.writer.write(record)
        self.documents += starts_document
        self.sentences += 1
        self.bytes += len(record) + TFRECORD_FRAMING


class _ShardWriters:
    """Deals documents to `count` shards in turn, or fills shards up to `limit` bytes."""

    def __init__(self, out, count, limit):
        self.out, self.count, self.limit, self.documents = out, count, limit, 0
        self.all = [self._open(index) for index in range(count or 1)]
        self.current = self.all[0]

    def _open(self, index):
        # Not `*.tfrecord`: a folder read as a corpus never picks up an unfinished shard.
        return _ShardWriter(self.out / f".shard-{index}-{os.getpid()}{SHARD_SUFFIX}.tmp")

    def write(self, record, starts_document):
        if starts_document:
            if self.count:
                self.current = self.all[self.documents % self.count]
            elif self.current.bytes >= self.limit:
                self.current = self._open(len(self.all))
                self.all.append(self.current)
            self.documents += 1
        self.current.write(record, starts_document)

    def publish(self):
        """Closes the shards and gives them their final names; returns their counts."""
        shards = []
        for index, writer in enumerate(self.all):
            writer.writer.close()
            name = f"corpus-{index:05d}-of-{len(self.all):05d}{SHARD_SUFFIX}"
            os.replace(writer.path, self.out / name)
            shards.append({"file": name, "documents": writer.documents,
                           "sentences": writer.sentences, "bytes": writer.bytes})
        return shards

    def discard(self):
        for writer in self.all:
            writer.writer.close()
            writer.path.unlink(missing_ok=True)


def shard_records(path):
    """The records of one shard (`path`: a string tensor) as a dataset of chunks
    `{"sentence", "document", "position"}` of up to `RECORD_CHUNK` records each."""
    return (tf.data.TFRecordDataset(path)
            .batch(RECORD_CHUNK)
            .map(lambda serialized: tf.io.parse_example(serialized, RECORD_FEATURES)))
