"""Unlabeled text corpora for pretraining: documents of sentences, read from plain-text files.

A file holds one sentence (or passage) per line; blank lines separate documents, and a file
without blank lines is one document. Files are read line by line (streamed), and anything
that is not UTF-8 text stops the read with the file and line.
"""

from dataclasses import dataclass
from pathlib import Path


class CorpusError(ValueError):
    """A corpus that cannot be used, with the file (and line) at fault."""


@dataclass(frozen=True)
class Corpus:
    """Documents, each a tuple of sentences, with where they came from."""

    documents: tuple
    sources: tuple

    @property
    def sentences(self):
        return [sentence for document in self.documents for sentence in document]

    def __len__(self):
        return len(self.documents)


def _lines(path):
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if b"\x00" in raw:
                raise CorpusError(f"{path}:{number}: NUL byte; this looks like a binary file, "
                                  "not UTF-8 text.")
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as error:
                raise CorpusError(f"{path}:{number}: not valid UTF-8 ({error.reason} at byte "
                                  f"{error.start}).") from None


def read_corpus(paths):
    """Reads documents from files (or every `*.txt` file in given folders, sorted).

    Args:
        paths: file or folder paths.

    Returns:
        A `Corpus`.

    Raises:
        FileNotFoundError: a path does not exist.
        CorpusError: a file is binary or not UTF-8 (file and line named), or the corpus holds
            no text at all.

    Example:
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_text("First one.\\nIts sequel.\\n\\nAnother story.\\n")
    >>> read_corpus([folder / "a.txt"]).documents
    (('First one.', 'Its sequel.'), ('Another story.',))
    """
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.glob("*.txt"))
            if not found:
                raise CorpusError(f"Corpus folder '{path}' holds no *.txt files.")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"Corpus path '{path}' does not exist.")
    if not files:
        raise CorpusError("No corpus files were given.")
    documents, sources = [], []
    for path in files:
        current = []
        for number, line in _lines(path):
            text = line.strip()
            if text:
                current.append(text)
            elif current:
                documents.append(tuple(current))
                sources.append(f"{path}:{number - len(current)}")
                current = []
        if current:
            documents.append(tuple(current))
            sources.append(str(path))
    if not documents:
        raise CorpusError(f"The corpus ({', '.join(map(str, files))}) holds no text.")
    return Corpus(tuple(documents), tuple(sources))
