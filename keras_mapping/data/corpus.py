"""Unlabeled text corpora for pretraining: which files make a corpus, and what a document is.

A text file holds one sentence (or passage) a line; blank lines separate documents, and a
file without blank lines is one document. Text files may be gzip'd (`*.txt.gz`, or any file
whose bytes start with gzip's magic number). Files are only ever read line by line, so a
corpus is never held in memory; `keras_mapping.data.corpus_shards` stores the same records as
TFRecord shards and `keras_mapping.data.corpus_stream` turns either kind into tf.data
pipelines.

A document is known by a fingerprint of its opening text (`document_key`), not by where it
sits, so the held-out documents stay the same whatever the order of the files.
"""

import hashlib
import itertools
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from keras_mapping.data.readers import check_bad_bytes, text_lines

TEXT_PATTERNS = ("*.txt", "*.txt.gz")
SHARD_SUFFIX = ".tfrecord"
# The key of a document hashes its sentences up to the one that reaches this many
# characters: enough to tell documents with a common first line apart, and all that must be
# held back before a document's first sentence can be streamed on.
DOCUMENT_KEY_CHARACTERS = 4096
# Checked before a run writes anything: bad bytes near the start of a file (the usual case:
# a binary file passed by mistake) stop it up front, whatever the size of the corpus.
FIRST_LINES_CHECKED = 1000
# A held-out decision is `key % HELD_OUT_BUCKETS < share * HELD_OUT_BUCKETS`.
HELD_OUT_BUCKETS = 1_000_000
# Records travel through tf.data in chunks: an op (or Python call) per record would cost
# tens of microseconds each, a chunk of this many about one per record.
RECORD_CHUNK = 512


class CorpusError(ValueError):
    """A corpus that cannot be used, with the file (and line) at fault."""


@dataclass(frozen=True)
class CorpusFiles:
    """The files of a corpus: all text files or all TFRecord shards from `shard_corpus`.

    Args:
        files: the files, in reading order.
        shards: whether they are TFRecord shards.
        on_bad_bytes: bytes that are not UTF-8 in text files: "error" or "replace".
        reader_errors: `CorpusError`s raised while a tf.data pipeline read the files (see
            `keras_mapping.data.corpus_stream.naming_corpus_errors`).
    """

    files: tuple
    shards: bool
    on_bad_bytes: str = "error"
    reader_errors: list = field(default_factory=list, compare=False, repr=False)

    def describe(self):
        size = sum(path.stat().st_size for path in self.files) / 2**20
        kind = "TFRecord shard" if self.shards else "text file"
        return f"{len(self.files):,} {kind}{'s' * (len(self.files) != 1)} ({size:,.1f} MB)"


def open_corpus(paths, on_bad_bytes="error"):
    """The corpus files of `paths`, checked at their start (cheaply, whatever their size).

    Args:
        paths: files, or folders whose `*.txt`, `*.txt.gz` and `*.tfrecord` files (sorted
            by name) are read.
        on_bad_bytes: "error" stops at bytes that are not UTF-8, naming the file and line;
            "replace" reads them as U+FFFD.

    Returns:
        `CorpusFiles`.

    Raises:
        FileNotFoundError: a path does not exist.
        CorpusError: a folder holds no corpus files, text files and shards are mixed, or
            the first lines of a file are binary or not UTF-8 (file and line named).

    Example:
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "b.txt").write_text("First one.\\nIts sequel.\\n\\nAnother story.\\n")
    >>> _ = (folder / "a.txt").write_text("Solo.\\n")
    >>> [path.name for path in open_corpus([folder]).files]
    ['a.txt', 'b.txt']
    """
    check_bad_bytes(on_bad_bytes)
    files = _corpus_files(paths)
    shards = [path.name.endswith(SHARD_SUFFIX) for path in files]
    if any(shards) and not all(shards):
        raise CorpusError(
            f"The corpus mixes text files and TFRecord shards ({files[shards.index(False)]}, "
            f"{files[shards.index(True)]}); give text files or the shards of "
            "`keras-mapping shard-corpus`, not both.")
    corpus = CorpusFiles(tuple(files), all(shards), on_bad_bytes)
    for path in files:
        if corpus.shards:
            _check_shard_start(path)
        else:
            for _ in itertools.islice(sentence_records(path, on_bad_bytes), FIRST_LINES_CHECKED):
                pass
    return corpus


def _corpus_files(paths):
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted({found for pattern in (*TEXT_PATTERNS, "*" + SHARD_SUFFIX)
                            for found in path.glob(pattern) if found.is_file()})
            if not found:
                raise CorpusError(f"Corpus folder '{path}' holds no *.txt, *.txt.gz or "
                                  f"*{SHARD_SUFFIX} files.")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"Corpus path '{path}' does not exist.")
    if not files:
        raise CorpusError("No corpus files were given.")
    return files


def _check_shard_start(path):
    """A TFRecord file starts with its first record's length (8 bytes, little endian) and a
    4-byte checksum; text or a cut-off file named `*.tfrecord` fails here, before a run."""
    with open(path, "rb") as file:
        header = file.read(12)
    if len(header) < 12 or struct.unpack("<Q", header[:8])[0] > path.stat().st_size:
        raise CorpusError(f"{path}: not a TFRecord shard (written by `keras-mapping "
                          "shard-corpus`); text files must not be named *.tfrecord.")


def document_key(sentences):
    """The key of a document: a 63-bit fingerprint of its opening sentences (see
    `DOCUMENT_KEY_CHARACTERS`), the same in every process and on every machine.

    Example:
    >>> document_key(["A first line.", "A second."]) == document_key(["A first line.", "A second."])
    True
    """
    digest = hashlib.blake2b("\n".join(sentences).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def is_held_out(key, share):
    """Whether the document with `key` is held out when `share` of documents are.

    Example:
    >>> is_held_out(document_key(["Some text."]), 0.0), is_held_out(12, 0.5)
    (False, True)
    """
    return key % HELD_OUT_BUCKETS < round(share * HELD_OUT_BUCKETS)


def _sentences(path, on_bad_bytes):
    """The stripped lines of a text file (blank ones as ""), with errors naming file and
    line."""
    number = 0
    try:
        for number, line in enumerate(text_lines(path, on_bad_bytes=on_bad_bytes), start=1):
            if "\x00" in line:
                raise CorpusError(f"{path}:{number}: NUL byte; this looks like a binary file, "
                                  "not UTF-8 text.")
            yield line.strip()
    except CorpusError:
        raise
    except (EOFError, OSError, zlib.error) as error:  # a corrupt or cut-off gzip stream
        raise CorpusError(f"{path}: compressed data is corrupt or cut short after line "
                          f"{number} ({error}).") from None
    except ValueError as error:  # undecodable bytes, named by file and line
        raise CorpusError(str(error)) from None


def sentence_records(path, on_bad_bytes="error"):
    """Yields `(sentence, document_key, position in the document)` for each sentence of a
    text file, streaming it: only a document's opening (for its key) is held back.

    Args:
        path: a text file (gzip'd or not).
        on_bad_bytes: "error" or "replace", as in `open_corpus`.

    Raises:
        CorpusError: a NUL byte, bytes that are not UTF-8 (with "error") or corrupt gzip
            data, named by file and line.

    Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = path.write_text("One.\\nTwo.\\n\\n\\nThree.\\n")
    >>> [(sentence, position) for sentence, _, position in sentence_records(path)]
    [('One.', 0), ('Two.', 1), ('Three.', 0)]
    """
    opening, characters, key, position = [], 0, None, 0
    for sentence in _sentences(path, on_bad_bytes):
        if not sentence:  # a blank line ends the document
            if opening:
                yield from _keyed(opening, document_key(opening))
            opening, characters, key, position = [], 0, None, 0
        elif key is not None:
            yield sentence, key, position
            position += 1
        else:
            opening.append(sentence)
            characters += len(sentence)
            if characters >= DOCUMENT_KEY_CHARACTERS:
                key, position = document_key(opening), len(opening)
                yield from _keyed(opening, key)
                opening = []
    if opening:
        yield from _keyed(opening, document_key(opening))


def _keyed(sentences, key):
    return ((sentence, key, position) for position, sentence in enumerate(sentences))
