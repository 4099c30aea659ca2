"""Which columns of a table hold the text, the text pair and the labels, and which task the
labels ask for, decided the same way every time and explained when it cannot be decided.

The rules (README, "Which columns and which task"):

1. Labels: `label_columns` (several 0/1 columns: multi-label), else `label_column`, else a
   column named label, labels, score or quality (any case), else the last column.
2. Texts: `text_column` (and `text_pair_column`) when given. Otherwise a known pair of names
   (`sentence1`/`sentence2`, `question`/`sentence`, `question1`/`question2`,
   `#1 String`/`#2 String`, `premise`/`hypothesis`, `text_a`/`text_b`, ...), else a known
   single name (text, sentence, review, ...), else the one remaining column that holds text.
   A column whose every value is a number (an index, an id, a year) never holds text.
3. The task (`detect_task`), when not given: every label a number, some not whole ->
   regression; whole numbers with few distinct values, or words -> classification; several
   label columns -> multi-label. Labels with too many distinct values for classes stop the
   run and name the flag that settles it.
"""

import math
import re
from dataclasses import dataclass

PAIR_NAMES = (("sentence1", "sentence2"), ("question", "sentence"),
              ("question1", "question2"), ("#1 string", "#2 string"),
              ("premise", "hypothesis"), ("text_a", "text_b"), ("sentence_a", "sentence_b"),
              ("text", "text_pair"), ("query", "passage"), ("question", "answer"))
TEXT_NAMES = ("text", "sentence", "review", "content", "document", "comment", "body",
              "tweet", "utterance", "question")
LABEL_NAMES = ("label", "labels", "score", "quality")
TASKS = ("classification", "regression", "multi-label")
# Whole-number labels are taken as classes only while there are few of them.
MAX_DETECTED_CLASSES = 100
_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


@dataclass(frozen=True)
class Columns:
    """The columns a task reads.

    Args:
        text: the text column.
        text_pair: the second text of a pair, or None.
        label: the label column (class names, a score, or delimited labels), or None.
        label_columns: the 0/1 columns of a multi-label task, or None.
    """

    text: str
    text_pair: str | None = None
    label: str | None = None
    label_columns: tuple | None = None

    def to_dict(self):
        return {"text": self.text, "text_pair": self.text_pair, "label": self.label,
                "label_columns": list(self.label_columns) if self.label_columns else None}

    @classmethod
    def from_dict(cls, values):
        columns = values.get("label_columns")
        return cls(values["text"], values.get("text_pair"), values.get("label"),
                   tuple(columns) if columns else None)


def is_number(value):
    """Whether a raw value reads as a number ("3", "2.615", " 1e-3 ").

    >>> [is_number(value) for value in ("3", "-2.5", "1e3", "three", "", "nan")]
    [True, True, True, False, False, False]
    """
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) or bool(_NUMBER.fullmatch(str(value)))


def _named(header, names):
    lowered = {column.lower(): column for column in header}
    return next((lowered[name] for name in names if name in lowered), None)


def _holds_text(table, column):
    return not all(is_number(value) for _, value in table.column(column))


def _label_columns(table, label_column, label_columns):
    header = table.header
    where = f"{table.path}:1"
    for column in [label_column] if label_column else list(label_columns or ()):
        if column not in header:
            raise ValueError(f"{where}: no label column {column!r} among the columns {header}")
    if label_columns:
        return None, tuple(label_columns)
    return label_column or _named(header, LABEL_NAMES) or header[-1], None


def choose_columns(table, text_column=None, text_pair_column=None, label_column=None,
                   label_columns=None):
    """The `Columns` of a `keras_mapping.data.readers.Table` (rules in the module docstring).

    Raises:
        ValueError: a named column is missing, or no column (or more than one) could hold
            the text; the message names the file, the columns and the flag to pass.

    Example:
    >>> import pathlib, tempfile
    >>> from keras_mapping.data.readers import read_rows
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "train.tsv"
    >>> _ = path.write_text("index\\tsentence1\\tsentence2\\tlabel\\n0\\tA cat.\\tAn animal.\\tyes\\n")
    >>> choose_columns(read_rows(path))
    Columns(text='sentence1', text_pair='sentence2', label='label', label_columns=None)
    """
    if label_column and label_columns:
        raise ValueError("pass --label-column or --label-columns, not both")
    label, multi = _label_columns(table, label_column, label_columns)
    header, where = table.header, f"{table.path}:1"
    taken = {label, *(multi or ())}
    for column, flag in ((text_column, "--text-column"), (text_pair_column, "--text-pair-column")):
        if column is not None and column not in header:
            raise ValueError(f"{where}: no column {column!r} ({flag}) among the columns {header}")
    if text_column is not None:
        return Columns(text_column, text_pair_column, label, multi)
    free = [column for column in header if column not in taken and column != text_pair_column]
    if text_pair_column is None:
        for first, second in PAIR_NAMES:
            pair = _named(free, (first,)), _named(free, (second,))
            if all(pair):
                return Columns(pair[0], pair[1], label, multi)
    known = _named(free, TEXT_NAMES)
    if known:
        return Columns(known, text_pair_column, label, multi)
    texts = [column for column in free if _holds_text(table, column)]
    if len(texts) == 1:
        return Columns(texts[0], text_pair_column, label, multi)
    numbers = [column for column in free if column not in texts]
    skipped = f" (columns of numbers, never text: {numbers})" if numbers else ""
    if not texts:
        raise ValueError(f"{where}: no column holds text among {header}{skipped}; the label is "
                         f"{label or list(multi)!r}. Choose the text with --text-column.")
    raise ValueError(f"{where}: {len(texts)} columns could hold the text: {texts}{skipped}. "
                     "Choose with --text-column (and --text-pair-column for sentence pairs).")


def _whole(value):
    number = float(value)
    return math.isfinite(number) and number.is_integer()


def detect_task(raw_labels, source, label_column, delimiter=","):
    """The task that labels read from `label_column` of `source` ask for (see the module
    docstring).

    Raises:
        ValueError: the labels have too many distinct values for classes; the message says
            which flag settles it.

    Example:
    >>> detect_task(["2.615", "0.000", "5.000"], "train.tsv", "score")
    'regression'
    >>> detect_task(["entailment", "not_entailment"], "train.tsv", "label")
    'classification'
    """
    values = [str(value).strip() for value in raw_labels]
    distinct = set(values)
    # Classes repeat: more distinct values than half the rows (and than a tiny file's 20)
    # looks like ids or text.
    limit = min(MAX_DETECTED_CLASSES, max(20, len(values) // 2))
    if values and all(is_number(value) for value in distinct):
        if not all(_whole(value) for value in distinct):
            return "regression"
        if len(distinct) <= limit:
            return "classification"
        raise ValueError(
            f"{source}: the label column {label_column!r} holds {len(distinct):,} different "
            f"whole numbers in {len(values):,} rows: too many for classes, and it may be an "
            "id. Pass --task classification or --task regression (or choose the label with "
            "--label-column).")
    if len(distinct) > limit:
        several = sum(delimiter in value for value in values)
        hint = (f"; {several:,} of them hold {delimiter!r}: for several labels a row, pass "
                "--task multi-label") if several else ""
        raise ValueError(
            f"{source}: the label column {label_column!r} holds {len(distinct):,} different "
            f"values in {len(values):,} rows, too many for classes (is it text?){hint}. "
            "Choose the label with --label-column, or pass --task classification to train "
            "on them as classes.")
    return "classification"
