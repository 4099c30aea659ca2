"""What `predict --input FILE` reads, streamed: a table whose header names the columns the
model was trained on (a split file of its dataset, `.tsv`, `.csv` or `.jsonl`, label column
and all), or plain lines: one text a line, two tab-separated texts a line for pair models.

A line of a table is never read as a text: a `.csv` or `.jsonl` file without the model's
columns, and a tab in a line for a model of one text, stop with the file and line.
"""

import itertools
from pathlib import Path

from keras_mapping.data.readers import checked_text, stream_rows, text_lines


def predict_inputs(path, columns=None, pairs=False, on_bad_bytes="error"):
    """`(texts, text_pairs or None)`: iterators over the examples of `path`, read as they
    are consumed.

    Args:
        path: the file.
        columns: the model's `Columns` (None for a model that names none).
        pairs: whether the model takes text pairs.
        on_bad_bytes: "error" or "replace", as `text_lines`.

    Example:
    >>> import pathlib, tempfile
    >>> from keras_mapping.data.layout import Columns
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "validation.tsv"
    >>> _ = path.write_text("index\\tsentence1\\tsentence2\\tlabel\\n0\\tA cat.\\tA pet.\\tyes\\n")
    >>> texts, pairs = predict_inputs(path, Columns("sentence1", "sentence2"), pairs=True)
    >>> list(zip(texts, pairs))
    [('A cat.', 'A pet.')]
    """
    path = Path(path)
    names = _column_names(columns, pairs)
    if names and _is_table(path, names, on_bad_bytes):
        examples = _table_examples(path, names, on_bad_bytes)
    else:
        examples = _line_examples(path, pairs, bool(names), on_bad_bytes)
    if not pairs:
        return (example[0] for example in examples), None
    firsts, seconds = itertools.tee(examples)
    return (first for first, _ in firsts), (second for _, second in seconds)


def _column_names(columns, pairs):
    if columns is None:
        return ()
    return (columns.text, columns.text_pair) if pairs else (columns.text,)


def _is_table(path, names, on_bad_bytes):
    """CSV and JSONL files are tables; a TSV file is one when its first line names the
    model's columns (otherwise its lines are texts, or tab-separated pairs)."""
    suffix = path.suffix.lower()
    if suffix == ".tsv":
        first_line = next(text_lines(path, on_bad_bytes=on_bad_bytes), "")
        return set(names) <= set(first_line.split("\t"))
    return suffix in (".csv", ".jsonl")


def _table_examples(path, names, on_bad_bytes):
    header, rows = stream_rows(path, on_bad_bytes=on_bad_bytes)
    if not set(names) <= set(header):
        raise ValueError(
            f"{path}:1: the columns {header} lack the model's text column"
            f"{'s' if len(names) > 1 else ''} {' and '.join(repr(name) for name in names)} "
            f"(as in the files it was trained on); give a file with them, or plain lines in "
            f"a .txt file")
    return _named_texts(path, rows, names)


def _named_texts(path, rows, names):
    for number, row in rows:
        where = f"{path}:{number}"
        missing = [name for name in names if name not in row]
        if missing:  # JSONL rows name their own keys
            raise ValueError(f"{where}: missing key {missing[0]!r}")
        yield tuple(checked_text(row[name], where, f"the text ({name})") for name in names)


def _line_examples(path, pairs, has_columns, on_bad_bytes):
    for number, line in enumerate(text_lines(path, on_bad_bytes=on_bad_bytes), start=1):
        fields = line.split("\t")
        if pairs and len(fields) != 2:
            raise ValueError(f"{path}:{number}: expected two tab-separated texts (a pair), "
                             f"found {len(fields)} field(s)")
        if not pairs and len(fields) != 1:
            raise ValueError(
                f"{path}:{number}: a tab in a line, for a model of one text: each line is one "
                "text" + (", or the file is a table whose header names the model's text "
                          "column" if has_columns else ""))
        yield tuple(fields)
