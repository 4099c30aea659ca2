"""Token-classification data (e.g. named entities): sentences of words with one tag per word.

Two file formats are read. CoNLL column files (`.txt`, `.conll`) hold one word a line with
whitespace-separated columns, the word first and the tag in a chosen column, and a blank line
after each sentence; `-DOCSTART-` lines between documents are skipped. JSONL files hold one
sentence a line, `{"tokens": [...], "tags": [...]}`. Tags are normalised to IOB2 (see
`tag_schemes`). A malformed line stops the read with `file:line`; only empty sentences are
skipped.
"""

import json
from dataclasses import dataclass, replace
from pathlib import Path

from keras_mapping.data.readers import check_bad_bytes, json_object, text_lines
from keras_mapping.data.tag_schemes import TagError, parse_tag, scheme_name, to_iob2

CONLL_SUFFIXES = (".txt", ".conll")
JSONL_SUFFIXES = (".jsonl",)
SPLIT_NAMES = {"train": ("train",), "validation": ("validation", "dev"), "test": ("test",)}
DOCUMENT_START = "-DOCSTART-"
_SAMPLE_BYTES = 1 << 20


class TokenFileError(ValueError):
    """A token-classification file that cannot be read, with the file (and line) at fault."""


def tag_names_of(tag_sequences):
    """The sorted set of tags with "O" first (always present), so that ids agree between runs.

    Example:
    >>> tag_names_of([["B-PER", "I-PER", "O"], ["B-LOC"]])
    ['O', 'B-LOC', 'B-PER', 'I-PER']
    """
    found = {tag for tags in tag_sequences for tag in tags}
    return ["O", *sorted(found - {"O"})]


@dataclass(frozen=True)
class TaggedSentences:
    """Sentences of words with their IOB2 tags, from one file.

    Args:
        words: the words of each sentence.
        tags: the IOB2 tag of each word.
        tag_names: the tag set, "O" first and the rest sorted (see `tag_names_of`).
        source: where the sentences came from (a file path), for messages.
        lines: the 1-based line of each sentence's first word in `source`.

    Example:
    >>> data = TaggedSentences([["Ada", "spoke"], ["Hi"]], [["B-PER", "O"], ["O"]],
    ...                        ["O", "B-PER"], "lists", [1, 4])
    >>> len(data), data.head(1).words, data.tag_ids()
    (2, [['Ada', 'spoke']], [[1, 0], [0]])
    """

    words: list
    tags: list
    tag_names: list
    source: str
    lines: list

    def __post_init__(self):
        counts = {"words": len(self.words), "tags": len(self.tags), "lines": len(self.lines)}
        if len(set(counts.values())) > 1:
            raise ValueError(f"{self.source}: lists of different lengths: {counts}")
        for index, (words, tags) in enumerate(zip(self.words, self.tags)):
            if len(words) != len(tags):
                raise ValueError(f"{self.source}:{self.lines[index]}: sentence {index} has "
                                 f"{len(words)} words but {len(tags)} tags")

    def __len__(self):
        return len(self.words)

    def head(self, count):
        """The first `count` sentences (all of them when there are fewer); same tag names."""
        return replace(self, words=self.words[:count], tags=self.tags[:count],
                       lines=self.lines[:count])

    def tag_ids(self, tag_names=None):
        """The tags as ids into `tag_names` (default: this data's own `tag_names`).

        Pass the training data's tag names when encoding other data, so that ids agree.

        Raises:
            TokenFileError: a tag is not in `tag_names` (names the sentence's line and word).
        """
        names = list(self.tag_names if tag_names is None else tag_names)
        ids = {name: index for index, name in enumerate(names)}
        encoded = []
        for index, (words, tags) in enumerate(zip(self.words, self.tags)):
            unknown = next((i for i, tag in enumerate(tags) if tag not in ids), None)
            if unknown is not None:
                raise TokenFileError(f"{self.source}:{self.lines[index]}: tag {tags[unknown]!r} "
                                     f"of word {unknown + 1} ({words[unknown]!r}) is not in the "
                                     f"tag set {names}")
            encoded.append([ids[tag] for tag in tags])
        return encoded


def _decoded(path, encoding, on_bad_bytes):
    """`(line number, line)` of a text file; undecodable bytes become a `TokenFileError`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Token file '{path}' does not exist or is not a file.")
    check_bad_bytes(on_bad_bytes)
    try:
        yield from enumerate(text_lines(path, encoding, on_bad_bytes), start=1)
    except ValueError as error:  # names file and line already
        raise TokenFileError(str(error)) from None


def _tag_index(tag_column, columns, where):
    if isinstance(tag_column, bool) or not isinstance(tag_column, int):
        raise TypeError(f"tag_column must be an integer column index, not {tag_column!r}")
    if columns < 2:
        raise TokenFileError(f"{where}: found {columns} column; a token line needs the word "
                             "and its tag, separated by whitespace")
    if not -columns <= tag_column < columns:
        raise TokenFileError(f"{where}: tag_column={tag_column} is out of range for the "
                             f"{columns} columns of this file (0..{columns - 1}, or negative "
                             "from the end)")
    if tag_column % columns == 0:
        raise TokenFileError(f"{where}: tag_column={tag_column} is the word column; the word "
                             "is always column 0")
    return tag_column % columns


def _conll_sentences(lines, path, tag_column):
    """Yields `[(line number, word, raw tag)]` per non-empty sentence of a CoNLL file."""
    sentence, columns, tag_index, first_line = [], None, None, None
    for number, line in lines:
        fields = line.split()
        if not fields or fields[0] == DOCUMENT_START:
            if sentence:
                yield sentence
            sentence = []
            continue
        if columns is None:
            columns, first_line = len(fields), number
            tag_index = _tag_index(tag_column, columns, f"{path}:{number}")
        elif len(fields) != columns:
            raise TokenFileError(f"{path}:{number}: expected {columns} whitespace-separated "
                                 f"columns (as on line {first_line}), got {len(fields)}")
        sentence.append((number, fields[0], fields[tag_index]))
    if sentence:
        yield sentence


def read_conll(path, tag_column=-1, scheme="iob2", repair=True, encoding="utf-8",
               on_bad_bytes="error"):
    """Reads a CoNLL column file: one word a line, a blank line after each sentence.

    Columns are separated by spaces or tabs; the word is column 0. Every token line must have
    as many columns as the first. Lines starting with `-DOCSTART-` separate documents and are
    skipped.

    Args:
        path: the file.
        tag_column: index of the tag column; negative counts from the end (CoNLL-2003's
            `word POS chunk NER` has its entity tags in column -1, its chunk tags in -2).
        scheme: the file's tag scheme, "iob1", "iob2"/"bio" or "iobes"/"bioes".
        repair: read an I- tag that continues no entity as B- (conlleval's reading) instead
            of raising (see `tag_schemes.to_iob2`).
        encoding: an ASCII-compatible text encoding.
        on_bad_bytes: "error" stops at undecodable bytes; "replace" reads them as U+FFFD.

    Returns:
        `TaggedSentences` with IOB2 tags.

    Raises:
        FileNotFoundError: the file does not exist.
        TokenFileError: a line with another number of columns, `tag_column` out of range,
            undecodable bytes, or no sentence at all (messages name `file:line`).
        TagError: a malformed or misplaced tag (named by `file:line`).

    Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "train.txt"
    >>> _ = path.write_text("-DOCSTART- O\\n\\nAda B-PER\\nLovelace I-PER\\nwrote O\\n")
    >>> data = read_conll(path)
    >>> data.words, data.tags, data.lines
    ([['Ada', 'Lovelace', 'wrote']], [['B-PER', 'I-PER', 'O']], [3])
    """
    scheme = scheme_name(scheme)
    words, tags, lines = [], [], []
    for sentence in _conll_sentences(_decoded(path, encoding, on_bad_bytes), path, tag_column):
        numbers, sentence_words, raw_tags = zip(*sentence)
        where = [f"{path}:{number}" for number in numbers]
        tags.append(to_iob2(raw_tags, scheme, repair, where))
        words.append(list(sentence_words))
        lines.append(numbers[0])
    if not words:
        raise TokenFileError(f"{path}: contains no sentences (the file is empty or holds only "
                             f"blank and {DOCUMENT_START} lines)")
    return TaggedSentences(words, tags, tag_names_of(tags), str(path), lines)




def _string_list(record, key, where):
    value = record[key]
    if not isinstance(value, list):
        raise TokenFileError(f"{where}: {key!r} must be a list, found {type(value).__name__}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise TokenFileError(f"{where}: {key}[{index}] must be a string, found "
                                 f"{type(item).__name__} {item!r}")
    return value


def _jsonl_sentence(record, where):
    """The words and raw tags of one JSONL record."""
    word_keys = [key for key in ("tokens", "words") if key in record]
    if len(word_keys) != 1 or "tags" not in record:
        raise TokenFileError(f"{where}: expected the keys 'tokens' (or 'words') and 'tags', "
                             f"found {sorted(record)}")
    words = _string_list(record, word_keys[0], where)
    tags = _string_list(record, "tags", where)
    if len(words) != len(tags):
        raise TokenFileError(f"{where}: {len(words)} {word_keys[0]} but {len(tags)} tags")
    # A blank word would become no word pieces, leaving its tag nothing to label.
    blank = next((i for i, word in enumerate(words) if not word.strip()), None)
    if blank is not None:
        raise TokenFileError(f"{where}: {word_keys[0]}[{blank}] is {words[blank]!r}; every "
                             "word needs a visible character")
    return words, tags


def read_token_jsonl(path, scheme="iob2", repair=True, encoding="utf-8", on_bad_bytes="error"):
    """Reads a JSONL file of one sentence a line: `{"tokens": [...], "tags": [...]}`.

    "words" may replace "tokens"; other keys are ignored. Blank lines and sentences without
    tokens are skipped. The arguments are those of `read_conll`.

    Raises:
        FileNotFoundError: the file does not exist.
        TokenFileError: invalid JSON, a missing key, lists of different lengths, an item that
            is not a string, or no sentence at all (messages name `file:line`).
        TagError: a malformed or misplaced tag.

    Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "train.jsonl"
    >>> _ = path.write_text('{"tokens": ["in", "Paris"], "tags": ["O", "S-LOC"]}\\n')
    >>> read_token_jsonl(path, scheme="iobes").tags
    [['O', 'B-LOC']]
    """
    scheme = scheme_name(scheme)
    words, tags, lines = [], [], []
    for number, line in _decoded(path, encoding, on_bad_bytes):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        sentence_words, raw_tags = _jsonl_sentence(json_object(line, where, TokenFileError), where)
        if sentence_words:
            tags.append(to_iob2(raw_tags, scheme, repair, where))
            words.append(sentence_words)
            lines.append(number)
    if not words:
        raise TokenFileError(f"{path}: contains no sentences (the file is empty or holds only "
                             "blank lines and sentences without tokens)")
    return TaggedSentences(words, tags, tag_names_of(tags), str(path), lines)


def read_token_file(path, **options):
    """Reads a `.txt`/`.conll` file with `read_conll` or a `.jsonl` file with
    `read_token_jsonl`, passing on `options`.

    Raises:
        TokenFileError: any other suffix (and whatever the reader raises).

    Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "dev.conll"
    >>> _ = path.write_text("Ada\\tI-PER\\n")
    >>> read_token_file(path, scheme="iob1").tags
    [['B-PER']]
    """
    suffix = Path(path).suffix.lower()
    if suffix in CONLL_SUFFIXES:
        return read_conll(path, **options)
    if suffix in JSONL_SUFFIXES:
        return read_token_jsonl(path, **options)
    raise TokenFileError(f"{path}: unsupported token file type {Path(path).suffix!r}; "
                         f"supported: {', '.join(CONLL_SUFFIXES + JSONL_SUFFIXES)}")


def find_token_splits(directory):
    """The token files of a dataset folder: `{split: path}` for the splits present.

    Splits are `train`, `validation` (file `validation.*` or `dev.*`) and `test`, with a
    suffix `.txt`, `.conll` or `.jsonl`.

    Raises:
        FileNotFoundError: `directory` is not a folder.
        TokenFileError: two files hold the same split, e.g. `dev.txt` and `validation.txt`.

    Example:
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("train.txt", "dev.txt", "notes.md"):
    ...     _ = (folder / name).write_text("")
    >>> {split: path.name for split, path in find_token_splits(folder).items()}
    {'train': 'train.txt', 'validation': 'dev.txt'}
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"Token data folder '{directory}' does not exist.")
    splits = {}
    for split, stems in SPLIT_NAMES.items():
        found = [directory / (stem + suffix) for stem in stems
                 for suffix in CONLL_SUFFIXES + JSONL_SUFFIXES
                 if (directory / (stem + suffix)).is_file()]
        if len(found) > 1:
            raise TokenFileError(f"{directory}: {len(found)} files for the {split} split: "
                                 f"{', '.join(path.name for path in found)}; keep one")
        if found:
            splits[split] = found[0]
    return splits


def _is_tag(text):
    try:
        parse_tag(text)
    except TagError:
        return False
    return True


def _looks_like_jsonl(line):
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(record, dict) and any(
        isinstance(record.get(key), list) for key in ("tokens", "words"))


def looks_like_token_file(path, sample_lines=50):
    """Whether a file looks like token-classification data, judging by its first non-blank
    lines: CoNLL columns (a `-DOCSTART-` line first, or every line with 2+ columns and a tag
    such as "O" or "B-PER" last) or JSONL objects with "tokens" or "words". Never raises.

    Example:
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_text("Ada NNP B-PER\\nwrote VBD O\\n")
    >>> _ = (folder / "b.tsv").write_text("sentence\\tlabel\\nfine\\t1\\n")
    >>> looks_like_token_file(folder / "a.txt"), looks_like_token_file(folder / "b.tsv")
    (True, False)
    """
    try:
        with open(path, "rb") as file:
            head = file.read(_SAMPLE_BYTES)  # bounded: the file may be large or binary
    except OSError:
        return False
    if b"\x00" in head:
        return False
    lines = head.decode("utf-8", errors="replace").removeprefix("\ufeff").split("\n")
    if len(head) == _SAMPLE_BYTES:
        lines = lines[:-1]  # the last line may be cut short
    lines = [line for line in lines if line.strip()][:sample_lines]
    if not lines:
        return False
    first = lines[0].strip()
    if first.startswith("{"):
        return _looks_like_jsonl(first)
    if first.split()[0] == DOCUMENT_START:
        return True
    return all(len(line.split()) >= 2 and _is_tag(line.split()[-1]) for line in lines)
