"""Unlabeled text corpora for pretraining: documents of sentences, read from plain-text files.

A file holds one sentence (or passage) per line; blank lines separate documents, and a file
without blank lines is one document. Files are read line by line (streamed), and anything
that is not UTF-8 text stops the read with the file and line.
"""

from dataclasses import dataclass
from pathlib import Path

from keras_mapping.data.readers import check_bad_bytes, text_lines


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


def _lines(path, on_bad_bytes):
    try:
        for number, line in enumerate(text_lines(path, on_bad_bytes=on_bad_bytes), start=1):
            if "\x00" in line:
                raise CorpusError(f"{path}:{number}: NUL byte; this looks like a binary file, "
                                  "not UTF-8 text.")
            yield number, line
    except CorpusError:
        raise
    except ValueError as error:  # undecodable bytes, named by file and line
        raise CorpusError(str(error)) from None


def read_corpus(paths, on_bad_bytes="error"):
    """Reads documents from files (or every `*.txt` file in given folders, sorted).

    Args:
        paths: file or folder paths.
        on_bad_bytes: "error" stops at bytes that are not UTF-8, naming the file and line;
            "replace" reads them as U+FFFD.

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
    check_bad_bytes(on_bad_bytes)
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
        for number, line in _lines(path, on_bad_bytes):
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
