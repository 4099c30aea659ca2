"""Labeled text from TSV, CSV and JSONL files or in-memory lists, checked row by row.

A malformed row stops the read with a `ValueError` that names `file:line` and what was
expected; no row is dropped or repaired. Labels become ids through a `LabelVocabulary`, which
is stored with a model so that later files map their labels to the same ids.
"""

import csv
import gzip
import itertools
import json
import numbers
import re
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np

# What each suffix holds; the words name the field separator in field-count errors.
FORMATS = {".tsv": "tab-separated", ".csv": "comma-separated", ".jsonl": "JSON"}

_INTEGER = re.compile(r"[+-]?[0-9]+")


def _prefix(where):
    return f"{where}: " if where else ""


def _label_key(raw, where=None):
    """The canonical string of a raw label: 1, "1", "01" and " 1 " are all "1"."""
    if isinstance(raw, numbers.Integral) and not isinstance(raw, bool):
        return str(int(raw))
    if not isinstance(raw, str):
        raise ValueError(f"{_prefix(where)}a label must be a string or an integer, "
                         f"found {type(raw).__name__} {raw!r}")
    key = raw.strip()
    if not key:
        raise ValueError(f"{_prefix(where)}empty label")
    return str(int(key)) if _INTEGER.fullmatch(key) else key


def checked_text(value, where, what):
    """`value`, or a ValueError naming `where` (e.g. "file:line") when it is not a string."""
    if not isinstance(value, str):
        raise ValueError(f"{where}: {what} must be a string, found {type(value).__name__} "
                         f"{value!r}")
    return value


@dataclass(frozen=True)
class LabelVocabulary:
    """The label set of a task: the raw label of each id, and a display name per id.

    Integer labels sort numerically, so labels 0..K-1 keep their values as ids; any other label
    set sorts as strings. Either way the same label set always gets the same ids.

    Args:
        labels: canonical raw label of each id, e.g. `("0", "1")` or `("neg", "pos")`.
        names: display name of each id; defaults to `labels`.

    Example:
    >>> vocabulary = LabelVocabulary.from_labels(["pos", "neg", "pos"])
    >>> vocabulary.names, vocabulary.encode("pos")
    (('neg', 'pos'), 1)
    >>> sst2 = LabelVocabulary.from_labels(["1", "0"], names=["negative", "positive"])
    >>> sst2.encode(1), sst2.names[1]
    (1, 'positive')
    >>> LabelVocabulary.from_json(sst2.to_json()) == sst2
    True
    """

    labels: tuple[str, ...]
    names: tuple[str, ...] | None = None

    def __post_init__(self):
        labels = tuple(_label_key(label, "labels") for label in self.labels)
        names = labels if self.names is None else tuple(str(name) for name in self.names)
        if len(names) != len(labels):
            raise ValueError(f"{len(labels)} labels {list(labels)} but {len(names)} names "
                             f"{list(names)}; give one name per label")
        if len(set(labels)) != len(labels):
            raise ValueError(f"duplicate labels in {list(labels)}")
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "names", names)

    @classmethod
    def from_labels(cls, raw_labels, names=None):
        """The vocabulary of every distinct label in `raw_labels`.

        Args:
            raw_labels: labels as read (strings or integers), repeats allowed.
            names: names in id order. Integer labels then are ids into `names`; string labels
                must be among `names` and take its order instead of the sorted one.
        """
        keys = {_label_key(raw, f"labels[{i}]") for i, raw in enumerate(raw_labels)}
        if names is None:
            if all(_INTEGER.fullmatch(key) for key in keys):
                return cls(tuple(sorted(keys, key=int)))
            return cls(tuple(sorted(keys)))
        by_id = cls.from_names(names)
        if keys <= set(by_id.labels):
            return by_id
        if keys <= set(by_id.names):
            return cls(by_id.names, by_id.names)
        unknown = sorted(keys - set(by_id.labels) - set(by_id.names))
        raise ValueError(f"labels {unknown} are neither ids 0..{len(names) - 1} nor among the "
                         f"names {list(names)}")

    @classmethod
    def from_names(cls, names):
        """Integer labels 0..K-1 named by `names`."""
        return cls(tuple(str(i) for i in range(len(names))), tuple(names))

    @property
    def num_classes(self):
        return len(self.labels)

    @cached_property
    def _ids(self):
        return {label: i for i, label in enumerate(self.labels)}

    def encode(self, raw, where=None):
        """The id of a raw label.

        Args:
            raw: a label as read, e.g. `"pos"`, `"1"` or `1`.
            where: prefix for the error message, e.g. `"train.tsv:12"`.

        Raises:
            ValueError: the label is empty, of another type, or not in the label set.
        """
        key = _label_key(raw, where)
        try:
            return self._ids[key]
        except KeyError:
            raise ValueError(f"{_prefix(where)}label {key!r} is not in the label set "
                             f"{list(self.labels)}") from None

    def to_json(self):
        return json.dumps({"labels": list(self.labels), "names": list(self.names)})

    @classmethod
    def from_json(cls, text):
        config = json.loads(text)
        return cls(tuple(config["labels"]), tuple(config["names"]))


@dataclass(frozen=True)
class LabeledTexts:
    """Texts with label ids, from one file, list or dataset split.

    Args:
        texts: the texts; empty strings are kept.
        labels: label id of each text, an index into `label_names`.
        label_names: display name of each label id.
        source: where the examples came from (a file path or a dataset name), for messages.
        text_pairs: the second text of each example for sentence-pair tasks, or None.
        label_vocabulary: how raw labels became ids; store it with a model (`to_json`) and
            pass it when reading more data so that the ids agree. Defaults to ids 0..K-1
            named by `label_names`.

    Example:
    >>> data = LabeledTexts(["good", "bad"], [1, 0], ["negative", "positive"], "lists")
    >>> len(data), data.head(1).texts
    (2, ['good'])
    """

    texts: list[str]
    labels: list[int]
    label_names: list[str]
    source: str
    text_pairs: list[str] | None = None
    label_vocabulary: LabelVocabulary | None = None

    def __post_init__(self):
        counts = {"texts": len(self.texts), "labels": len(self.labels)}
        if self.text_pairs is not None:
            counts["text_pairs"] = len(self.text_pairs)
        if len(set(counts.values())) > 1:
            raise ValueError(f"{self.source}: lists of different lengths: {counts}")
        vocabulary = self.label_vocabulary or LabelVocabulary.from_names(self.label_names)
        if list(vocabulary.names) != list(self.label_names):
            raise ValueError(f"{self.source}: label_names {list(self.label_names)} differ from "
                             f"the vocabulary's names {list(vocabulary.names)}")
        outside = [i for i in set(self.labels) if not 0 <= i < vocabulary.num_classes]
        if outside:
            raise ValueError(f"{self.source}: label ids {sorted(outside)} are outside "
                             f"0..{vocabulary.num_classes - 1}")
        object.__setattr__(self, "label_vocabulary", vocabulary)

    def __len__(self):
        return len(self.texts)

    def head(self, count):
        """The first `count` examples (all of them when there are fewer)."""
        pairs = None if self.text_pairs is None else self.text_pairs[:count]
        return replace(self, texts=self.texts[:count], labels=self.labels[:count],
                       text_pairs=pairs)

    @property
    def targets(self):
        """The label ids as the int32 array a model trains on."""
        return np.asarray(self.labels, "int32")


@dataclass(frozen=True)
class TargetTexts:
    """Texts (or text pairs) with numeric targets: real-valued scores for regression, 0/1
    rows for multi-label classification. (Class labels use `LabeledTexts`.)

    Args:
        texts: the texts.
        targets: float32 array with one row (or value) per text.
        source: where the examples came from, for messages.
        text_pairs: the second text of each example, or None.

    Example:
    >>> data = TargetTexts(["a", "b"], np.array([[0.5], [4.0]], "float32"), "lists")
    >>> len(data), data.head(1).targets.tolist()
    (2, [[0.5]])
    """

    texts: list
    targets: np.ndarray
    source: str
    text_pairs: list | None = None

    def __post_init__(self):
        lengths = {len(self.texts), len(self.targets)}
        if self.text_pairs is not None:
            lengths.add(len(self.text_pairs))
        if len(lengths) > 1:
            raise ValueError(f"{self.source}: texts, targets and pairs differ in length")

    def __len__(self):
        return len(self.texts)

    def head(self, count):
        """The first `count` examples."""
        pairs = None if self.text_pairs is None else self.text_pairs[:count]
        return replace(self, texts=self.texts[:count], targets=self.targets[:count],
                       text_pairs=pairs)


def _collect_label(raw, where, vocabulary):
    # Without a vocabulary the ids are known only once every label has been seen.
    return _label_key(raw, where) if vocabulary is None else vocabulary.encode(raw, where)


def _finish_labels(collected, vocabulary, source, names=None):
    if vocabulary is not None:
        return collected, vocabulary
    try:
        vocabulary = LabelVocabulary.from_labels(collected, names)
    except ValueError as error:  # labels that do not fit the given names
        raise ValueError(f"{source}: {error}") from None
    return [vocabulary.encode(key) for key in collected], vocabulary


def from_lists(texts, labels, label_names=None, *, text_pairs=None, label_vocabulary=None,
               source="in-memory lists"):
    """Checks in-memory texts and raw labels and turns the labels into ids.

    Args:
        texts: strings.
        labels: raw labels (strings or integers), one per text.
        label_names: names in id order (see `LabelVocabulary.from_labels`).
        text_pairs: second texts for sentence-pair tasks, one per text.
        label_vocabulary: an existing `LabelVocabulary` to encode with, e.g. the training
            split's; replaces `label_names`.
        source: names the data in error messages.

    Example:
    >>> data = from_lists(["a fine film", "dull"], ["pos", "neg"])
    >>> data.labels, data.label_names
    ([1, 0], ['neg', 'pos'])
    """
    if label_names is not None and label_vocabulary is not None:
        raise ValueError("pass label_names or label_vocabulary, not both")
    texts = [checked_text(text, f"{source}, example {i}", "the text")
             for i, text in enumerate(texts)]
    if text_pairs is not None:
        text_pairs = [checked_text(text, f"{source}, example {i}", "the text pair")
                      for i, text in enumerate(text_pairs)]
    collected = [_collect_label(raw, f"{source}, example {i}", label_vocabulary)
                 for i, raw in enumerate(labels)]
    ids, vocabulary = _finish_labels(collected, label_vocabulary, source, label_names)
    return LabeledTexts(texts, ids, list(vocabulary.names), source, text_pairs, vocabulary)


BAD_BYTES = ("error", "replace")
GZIP_MAGIC = b"\x1f\x8b"


def check_bad_bytes(on_bad_bytes):
    if on_bad_bytes not in BAD_BYTES:
        raise ValueError(f"on_bad_bytes must be 'error' or 'replace', not {on_bad_bytes!r}")


def _decoded_lines(file, path, encoding, on_bad_bytes):
    errors = "strict" if on_bad_bytes == "error" else "replace"
    for number, raw in enumerate(file, start=1):
        try:
            line = raw.decode(encoding, errors)
        except UnicodeDecodeError as error:
            raise ValueError(
                f"{path}:{number}: invalid {encoding.upper()} (byte {raw[error.start]:#04x} at "
                f"offset {error.start}: {error.reason}); to read it with U+FFFD in its place, "
                "pass --on-bad-bytes replace (on_bad_bytes='replace' in Python)") from None
        # Spreadsheet tools start files with a byte order mark, which would rename column one.
        yield line.removeprefix("\ufeff") if number == 1 else line


def open_bytes(path):
    """`path` opened for reading bytes; a gzip'd file (its bytes start with gzip's magic
    number, whatever its name) is decompressed as it is read."""
    with open(path, "rb") as file:
        compressed = file.read(len(GZIP_MAGIC)) == GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def text_lines(path, encoding="utf-8", on_bad_bytes="error"):
    """Yields the lines of a text file one at a time, without their line ends, streaming it
    (a gzip'd file is decompressed on the way).

    Args:
        path: the file.
        encoding: its encoding.
        on_bad_bytes: "error" stops at undecodable bytes, naming the file and line;
            "replace" reads them as U+FFFD.

    Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "texts.txt"
    >>> _ = path.write_bytes(b"caf\\xc3\\xa9\\r\\nbad \\xff\\n")
    >>> list(text_lines(path, on_bad_bytes="replace"))
    ['café', 'bad \ufffd']
    """
    check_bad_bytes(on_bad_bytes)
    with open_bytes(path) as file:
        for line in _decoded_lines(file, path, encoding, on_bad_bytes):
            yield line.removesuffix("\n").removesuffix("\r")


def _tsv_records(lines, path):
    # GLUE's files have no quoting: a quote is part of the sentence.
    for number, line in enumerate(lines, start=1):
        line = line.removesuffix("\n").removesuffix("\r")
        yield number, line.split("\t") if line.strip() else None


def _csv_records(lines, path):
    reader = csv.reader(lines, strict=True)
    last_line = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise ValueError(f"{path}:{reader.line_num}: malformed CSV quoting: {error}") from None
        # A quoted field may span lines; report the line the record starts on.
        yield last_line + 1, row if "".join(row).strip() else None
        last_line = reader.line_num


def json_object(line, where, error=ValueError):
    """One JSONL line as a dict; raises `error` naming `where` (e.g. "file:line") for
    invalid JSON or a value that is not an object."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as problem:
        raise error(f"{where}: invalid JSON: {problem.msg} at column {problem.colno}") from None
    if not isinstance(record, dict):
        raise error(f"{where}: expected a JSON object, found {type(record).__name__}")
    return record


def _jsonl_records(lines, path):
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            yield number, None
            continue
        record = json_object(line, f"{path}:{number}")
        yield number, record


_RECORDS = {".tsv": _tsv_records, ".csv": _csv_records, ".jsonl": _jsonl_records}


def _rows(records, path):
    """The non-blank records; a blank line is an error unless only blank lines follow it."""
    blank = None
    for number, record in records:
        if record is None:
            blank = blank or number
        elif blank is not None:
            raise ValueError(f"{path}:{blank}: blank line before the row on line {number}; "
                             "blank lines are allowed only at the end of the file")
        else:
            yield number, record


def _column_indices(header, text_column, label_column, text_pair_column, where):
    def find(column, role):
        if isinstance(column, int) and not isinstance(column, bool):
            if 0 <= column < len(header):
                return column
            raise ValueError(f"{where}: {role} column {column} is out of range for the "
                             f"{len(header)} columns {header}")
        if column in header:
            return header.index(column)
        raise ValueError(f"{where}: no {role} column {column!r} among the columns {header}")

    if label_column is None:
        label_column = "label" if "label" in header else len(header) - 1
    label = find(label_column, "label")
    pair = None if text_pair_column is None else find(text_pair_column, "text pair")
    if text_column is None:
        text = next((i for i in range(len(header)) if i not in (label, pair)), None)
        if text is None:
            raise ValueError(f"{where}: no column left for the text among {header}; expected a "
                             "text column and a label column")
    else:
        text = find(text_column, "text")
    chosen = [i for i in (text, label, pair) if i is not None]
    if len(set(chosen)) < len(chosen):
        raise ValueError(f"{where}: the text, label and text pair columns must differ, got "
                         f"{[header[i] for i in chosen]}")
    return text, label, pair


def _check_header(header, label, where):
    # A file without a header would otherwise lose its first row to the column names.
    if _INTEGER.fullmatch(header[label].strip()):
        raise ValueError(f"{where}: the label column is named {header[label]!r}, which looks "
                         "like a label: the first line must be a header of column names")


@dataclass(frozen=True)
class Table:
    """The rows of a data file, checked for shape but not yet interpreted.

    Args:
        path: the file.
        header: the column names (for JSONL, the first object's keys).
        rows: `(line number, {column: value})` per row, in file order.
    """

    path: Path
    header: list
    rows: list

    def column(self, name):
        """`[(where, value)]` of one column, where is `file:line`.

        Raises:
            ValueError: a JSONL row lacks the key.
        """
        values = []
        for number, row in self.rows:
            if name not in row:
                raise ValueError(f"{self.path}:{number}: missing key {name!r}")
            values.append((f"{self.path}:{number}", row[name]))
        return values

    def texts(self, name, what=None):
        """The strings of column `name`, each checked to be a string."""
        what = what or f"the text ({name})"
        return [checked_text(value, where, what) for where, value in self.column(name)]


def read_rows(path, encoding="utf-8", on_bad_bytes="error"):
    """Reads a `.tsv`, `.csv` or `.jsonl` file into a `Table` (`stream_rows`, read whole).

    Raises:
        ValueError: as `stream_rows`, or a file of a header and no row.
    """
    header, rows = stream_rows(path, encoding, on_bad_bytes)
    records = list(rows)
    if not records:
        raise ValueError(f"{path}:1: header only; contains no rows")
    return Table(Path(path), header, records)


def stream_rows(path, encoding="utf-8", on_bad_bytes="error"):
    """`(header, rows)` of a `.tsv`, `.csv` or `.jsonl` file, the rows read as they are
    consumed: `(line number, {column: value})` each.

    TSV is GLUE's format: a header row, fields split on tabs, no quoting. CSV has a header row
    and standard quoting. JSONL holds one JSON object per line; the first object's keys are the
    columns. Blank lines may only end the file.

    Raises:
        ValueError: an unsupported suffix, an empty file, a duplicate column name, or (as
            the rows are read) a row with the wrong number of fields (the message names
            `file:line`).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _RECORDS:
        raise ValueError(f"{path}: unsupported file type {path.suffix!r}; supported: "
                         f"{', '.join(sorted(FORMATS))}")
    check_bad_bytes(on_bad_bytes)
    if "\n".encode(encoding) != b"\n":
        raise ValueError(f"{path}: encoding {encoding!r} is not ASCII-compatible; re-encode the "
                         "file as UTF-8")
    rows = _records(path, encoding, on_bad_bytes)
    first = next(rows, None)
    if first is None:
        raise ValueError(f"{path}: contains no rows (the file is empty)")
    header_line, header = first
    if isinstance(header, dict):
        # JSONL has no header line: the first object is a row and names the columns.
        return list(header), itertools.chain([first], rows)
    duplicates = sorted({column for column in header if header.count(column) > 1})
    if duplicates:
        raise ValueError(f"{path}:{header_line}: duplicate column {duplicates[0]!r} in the "
                         f"header {header}")
    return header, _named_fields(rows, header, path)


def _records(path, encoding, on_bad_bytes):
    """The non-blank records of a table file, header first; the file stays open while the
    caller reads."""
    with path.open("rb") as file:
        lines = _decoded_lines(file, path, encoding, on_bad_bytes)
        yield from _rows(_RECORDS[path.suffix.lower()](lines, path), path)


def _named_fields(rows, header, path):
    for number, row in rows:
        if len(row) != len(header):
            raise ValueError(f"{path}:{number}: expected {len(header)} "
                             f"{FORMATS[path.suffix.lower()]} fields, found {len(row)}")
        yield number, dict(zip(header, row))


def read_table(path, text_column=None, label_column=None, text_pair_column=None,
               label_vocabulary=None, encoding="utf-8", on_bad_bytes="error"):
    """Reads labeled texts (class labels) from a `.tsv`, `.csv` or `.jsonl` file (see
    `read_rows` for the formats). Empty texts are kept.

    Args:
        path: the file; its suffix picks the format.
        text_column: name or 0-based index of the text column; defaults to the first column
            that is neither the label nor the text pair column.
        label_column: name or index of the label column; defaults to the column named
            "label", else the last column.
        text_pair_column: name or index of a second text column, for sentence-pair tasks.
        label_vocabulary: a `LabelVocabulary` to encode with; pass the training file's when
            reading a validation file so that the ids agree. Defaults to the vocabulary of all
            labels in this file.
        encoding: an ASCII-compatible text encoding.
        on_bad_bytes: "error" stops at undecodable bytes; "replace" reads them as U+FFFD.

    Returns:
        `LabeledTexts`.

    Raises:
        ValueError: an unsupported suffix, or a malformed row (the message names `file:line`).

    Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "train.tsv"
    >>> _ = path.write_text('sentence\\tlabel\\nit \\'s "fine"\\t1\\nbad\\t0\\n')
    >>> data = read_table(path)
    >>> data.texts, data.labels, data.label_names
    (['it \\'s "fine"', 'bad'], [1, 0], ['0', '1'])
    """
    table = read_rows(path, encoding, on_bad_bytes)
    where = f"{table.path}:{table.rows[0][0] if table.path.suffix.lower() == '.jsonl' else 1}"
    text, label, pair = (None if i is None else table.header[i] for i in _column_indices(
        table.header, text_column, label_column, text_pair_column, where))
    if table.path.suffix.lower() != ".jsonl":
        _check_header(table.header, table.header.index(label), where)
    return labeled_texts_from_table(table, text, label, pair, label_vocabulary)


def labeled_texts_from_table(table, text, label, pair=None, label_vocabulary=None,
                             label_names=None):
    """`LabeledTexts` of the named columns of a `Table`; labels outside `label_vocabulary`
    (when given) stop with the file and line."""
    texts = table.texts(text)
    pairs = table.texts(pair, "the text pair") if pair is not None else None
    collected = [_collect_label(raw, where, label_vocabulary)
                 for where, raw in table.column(label)]
    ids, vocabulary = _finish_labels(collected, label_vocabulary, table.path, label_names)
    return LabeledTexts(texts, ids, list(vocabulary.names), str(table.path), pairs, vocabulary)
