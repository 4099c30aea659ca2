"""BERT's WordPiece tokenizer in TensorFlow graph ops, token-exact with the reference.

The reference is Hugging Face's `BertTokenizer` (the Rust `tokenizers` BertNormalizer,
BertPreTokenizer and WordPiece). keras-hub and tensorflow-text disagree with it on a few
normalisation details, so the text is normalised here with plain string ops; the class keeps
keras-hub's `WordPieceTokenizer` for the vocabulary, the lookups and `detokenize`, and
`tensorflow_text.FastWordpieceTokenizer` for the greedy subword match.
"""

import functools
import json
import os
import re
from pathlib import Path

import keras
import keras_hub
import tensorflow as tf
import tensorflow_text as tf_text

from keras_mapping.checkpoints.presets import resolve_preset
from keras_mapping.tokenizers import offsets
from keras_mapping.tokenizers.regex_split import regex_split, regex_split_with_offsets
from keras_mapping.tracing import as_written

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# The reference drops NUL, U+FFFD and its "other" characters: Cc, Cf, Co (its tables have no
# Cn, so unassigned code points stay). Tab, newline and carriage return are whitespace instead.
_CONTROL = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\p{Cf}\p{Co}\x{FFFD}]"
# Once the controls are gone, Rust's `char::is_whitespace` is exactly the Z categories;
# RE2's `\s` (what keras-hub splits on) is ASCII only and misses no-break and thin spaces.
_WHITESPACE = r"[\t\n\r\p{Z}]"
# Rust's table starts its fifth range at U+2B920, not U+2B820 as Google's original BERT does.
_CJK = (
    r"[\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}"
    r"\x{2B740}-\x{2B81F}\x{2B920}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]"
)
# The reference classifies with older Unicode tables than RE2: U+1885 and U+1886 were letters
# there and U+1734 a nonspacing mark (and U+166D punctuation, below). These are the only
# differences among the characters Unicode 3.2 assigned (see tests/tokenizers); characters
# assigned since may still be classed differently.
_ACCENT = r"[^\P{Mn}\x{1885}\x{1886}]|\x{1734}"
# BERT counts every ASCII symbol as punctuation, `$`, `^` and `` ` `` included.
_PUNCTUATION = r"[!-/:-@\[-`{-~\p{P}\x{166D}]"


def _sanitize(text):
    # Python callers cannot pass invalid UTF-8, so it becomes U+FFFD, which normalisation drops
    # anyway. NUL becomes U+FFFD too: `regex_split` and `tf.strings.lower` stop reading at NUL,
    # and since both characters are dropped later the words come out the same.
    text = tf.strings.unicode_transcode(
        text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
    )
    return tf.strings.regex_replace(text, r"\x00", "\ufffd")


def _normalize(text, lowercase, strip_accents, split_on_cjk):
    if strip_accents is None:
        strip_accents = lowercase
    text = tf.strings.regex_replace(text, _CONTROL, "")
    text = tf.strings.regex_replace(text, _WHITESPACE, " ")
    if split_on_cjk:
        text = tf.strings.regex_replace(text, _CJK, r" \0 ")
    if strip_accents:
        text = tf.strings.regex_replace(tf_text.normalize_utf8(text, "NFD"), _ACCENT, "")
    if lowercase:
        # ICU lowercases a word-final capital sigma to "ς"; the reference maps each character
        # on its own, so every "Σ" becomes "σ". (tf-text's case folding is NFKC, which would
        # also rewrite ligatures, full-width letters and "ß".)
        text = tf.strings.regex_replace(text, "\u03a3", "\u03c3")
        text = tf.strings.lower(text, encoding="utf-8")
    return text


def _merged_inner_rows(rows):
    """`rows.merge_dims(1, 2)` for a `[batch, (a), (b)]` ragged tensor, without validating
    row splits that are valid by construction (see `regex_split`)."""
    return tf.RaggedTensor.from_row_splits(
        rows.values.values, tf.gather(rows.values.row_splits, rows.row_splits), validate=False)


def _split(text):
    return regex_split(text, f"{_WHITESPACE}|{_PUNCTUATION}", _PUNCTUATION)


def _split_with_offsets(text):
    return regex_split_with_offsets(text, f"{_WHITESPACE}|{_PUNCTUATION}", _PUNCTUATION)


def split_words(text, lowercase=True, strip_accents=None, split_on_cjk=True):
    """Normalises strings as BERT's reference does and splits them into words.

    Runs in TensorFlow graph ops, so it also works inside `tf.data` and SavedModels.

    Args:
        text: string tensor of any shape.
        lowercase: lowercase each character.
        strip_accents: drop accents (NFD, then no nonspacing marks); `None` follows
            `lowercase`, as in the reference.
        split_on_cjk: put each CJK ideograph in a word of its own.

    Returns:
        A string `tf.RaggedTensor` with one more (ragged) dimension holding the words; each
        punctuation character is a word.

    Example:
    >>> split_words(["Naïve café, ÅNGSTRÖM!"]).to_list()
    [[b'naive', b'cafe', b',', b'angstrom', b'!']]
    """
    text = _sanitize(tf.convert_to_tensor(text, tf.string))
    return _split(_normalize(text, lowercase, strip_accents, split_on_cjk))


def load_vocabulary(vocabulary):
    """Reads a WordPiece vocabulary and checks it suits BERT.

    Args:
        vocabulary: path to a `vocab.txt` (one token per line; a token's id is its line
            number from 0) or a sequence of tokens.

    Returns:
        The tokens as a list of strings.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a token repeats, a special token is missing, or the file is not UTF-8.

    Example:
    >>> load_vocabulary(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hi"])[-1]
    'hi'
    """
    if isinstance(vocabulary, (str, os.PathLike)):
        path = Path(vocabulary)
        if not path.is_file():
            raise FileNotFoundError(
                f"Vocabulary file '{path}' does not exist; expected a vocab.txt with one "
                "WordPiece token per line."
            )
        try:
            with open(path, encoding="utf-8") as file:
                # Only the newline ends a token, as in the reference's loader: a token may
                # carry other whitespace.
                tokens = [line.rstrip("\n") for line in file]
        except UnicodeDecodeError as error:
            raise ValueError(f"Vocabulary file '{path}' is not UTF-8 text: {error}") from error
        source, entry = f"Vocabulary file '{path}'", "line"
    else:
        tokens = [str(token) for token in vocabulary]
        source, entry = "The vocabulary list", "entry"
    first_seen = {}
    for number, token in enumerate(tokens, start=1):
        if token in first_seen:
            raise ValueError(
                f"{source} repeats the token {token!r} on {entry} {number} (first on {entry} "
                f"{first_seen[token]}); every token needs a single id."
            )
        first_seen[token] = number
    missing = [token for token in SPECIAL_TOKENS if token not in first_seen]
    if missing:
        raise ValueError(
            f"{source} lacks the special tokens {', '.join(missing)}; a BERT vocabulary holds "
            f"all of {', '.join(SPECIAL_TOKENS)}."
        )
    return tokens


def _as_string_tensor(inputs):
    if isinstance(inputs, (tf.Tensor, tf.RaggedTensor)):
        return inputs
    try:
        return tf.convert_to_tensor(inputs, tf.string)
    except ValueError:
        return tf.ragged.constant(inputs, tf.string)


@keras.saving.register_keras_serializable(package="keras_mapping")
class BertTokenizer(keras_hub.tokenizers.WordPieceTokenizer):
    """BERT's WordPiece tokenizer, matching Hugging Face's `BertTokenizer` token for token.

    Normalisation (control characters dropped, whitespace unified, CJK ideographs spaced,
    accents stripped, lowercasing), splitting on whitespace and punctuation, and greedy
    longest-match WordPiece all run as TensorFlow graph ops: the layer works eagerly, in
    `tf.data` pipelines and in reloaded SavedModels. Ids exclude `[CLS]`/`[SEP]`; see
    `BertPacker`.

    Args:
        vocabulary: path to a `vocab.txt` or a list of tokens; it must hold `[PAD]`, `[UNK]`,
            `[CLS]`, `[SEP]` and `[MASK]`.
        lowercase: lowercase the text (the reference's `do_lower_case`).
        strip_accents: remove accents; `None` follows `lowercase`.
        split_on_cjk: make each CJK ideograph a word (`tokenize_chinese_chars`).
        max_input_chars_per_word: longer words (counted in characters) become `[UNK]`.
        special_tokens_in_strings: map the five special tokens written literally in the
            text (case-sensitive, e.g. `"[MASK]"`) to their ids, as the reference does.
        **kwargs: standard layer arguments (`name`, `dtype`: `"int32"` ids by default, or
            `"string"` for the word pieces themselves).

    Example:
    >>> tokenizer = BertTokenizer.from_preset("minilm_l6")
    >>> tokenizer.tokenize("Paris is the [MASK] of France.").numpy().tolist()
    [3000, 2003, 1996, 103, 1997, 2605, 1012]
    >>> ids = tokenizer.tokenize(["Naïve café", "unflinchingly bleak"])
    >>> ids.to_list()
    [[15743, 7668], [4895, 10258, 2378, 8450, 2135, 21657]]
    >>> [s.decode() for s in tokenizer.detokenize(ids).numpy()]
    ['naive cafe', 'unflinchingly bleak']
    """

    def __init__(self, vocabulary, lowercase=True, strip_accents=None, split_on_cjk=True,
                 max_input_chars_per_word=100, special_tokens_in_strings=True, **kwargs):
        tokens = load_vocabulary(vocabulary)
        for token, name in zip(SPECIAL_TOKENS, ("pad", "unk", "cls", "sep", "mask")):
            self._add_special_token(token, f"{name}_token")
        # Read by `_set_vocabulary_tf`, which the parent's constructor calls.
        self.max_input_chars_per_word = max_input_chars_per_word
        super().__init__(
            vocabulary=tokens,
            lowercase=lowercase,
            strip_accents=strip_accents,
            split_on_cjk=split_on_cjk,
            oov_token="[UNK]",
            special_tokens_in_strings=special_tokens_in_strings,
            **kwargs,
        )
        self._special_pattern = "|".join(re.escape(token) for token in SPECIAL_TOKENS)

    def __setattr__(self, name, value):
        # A vocabulary's 30,522 strings and its token-to-id map hold no weights or layers,
        # yet Keras' attribute tracking visited every one: 80% of building a tokenizer.
        if name in ("vocabulary", "_token_to_id_map"):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @classmethod
    def from_preset(cls, name_or_dir, **kwargs):
        """Builds the tokenizer of a named preset or a BERT directory.

        Reads `vocab.txt`, and `do_lower_case`, `strip_accents` and `tokenize_chinese_chars`
        from `tokenizer_config.json` when present.

        Args:
            name_or_dir: a name from `keras_mapping.checkpoints.PRESETS` or a directory.
            **kwargs: constructor arguments that override the preset's settings.

        Example:
        >>> BertTokenizer.from_preset("minilm_l6").vocabulary_size()
        30522
        """
        directory = resolve_preset(name_or_dir, required=("vocab.txt",))
        settings = {}
        config_path = directory / "tokenizer_config.json"
        if config_path.is_file():
            config = json.loads(config_path.read_text(encoding="utf-8"))
            for theirs, ours in (("do_lower_case", "lowercase"),
                                 ("strip_accents", "strip_accents"),
                                 ("tokenize_chinese_chars", "split_on_cjk")):
                if theirs in config:
                    settings[ours] = config[theirs]
        settings.update(kwargs)
        return cls(vocabulary=directory / "vocab.txt", **settings)

    def _set_vocabulary_tf(self):
        # tf-text limits words in bytes; the reference limits them in characters, which the
        # tokenizer enforces itself. Four bytes a character keeps tf-text's limit out of reach.
        self._fast_word_piece = tf_text.FastWordpieceTokenizer(
            vocab=self.vocabulary,
            suffix_indicator=self.suffix_indicator,
            max_bytes_per_word=4 * self.max_input_chars_per_word,
            token_out_type=self.compute_dtype,
            unknown_token=self.oov_token,
            no_pretokenization=True,
            support_detokenization=True,
        )

    def _words(self, text):
        """Words of a 1-D batch of strings, as a `[batch, (words)]` ragged tensor."""
        text = _sanitize(text)
        options = (self.lowercase, self.strip_accents, self.split_on_cjk)
        if not self.special_tokens_in_strings:
            return _split(_normalize(text, *options))
        # The reference finds special tokens in the raw text, before any normalisation, so
        # the text is cut around them first and only the pieces between are normalised.
        pieces = regex_split(text, self._special_pattern, self._special_pattern)
        flat = pieces.flat_values
        is_special = tf.strings.regex_full_match(flat, self._special_pattern)
        words = _split(_normalize(tf.where(is_special, "", flat), *options))
        specials = tf.RaggedTensor.from_row_lengths(
            tf.boolean_mask(flat, is_special), tf.cast(is_special, tf.int64), validate=False)
        words = tf.concat([words, specials], axis=1)
        return _merged_inner_rows(pieces.with_flat_values(words))

    def _unk_if_too_long(self, words):
        """Flat words with the over-long ones replaced by `[UNK]`, and which those were."""
        too_long = tf.strings.length(words, unit="UTF8_CHAR") > self.max_input_chars_per_word
        return tf.where(too_long, tf.constant(self.oov_token), words), too_long

    def _word_pieces(self, words):
        """`[..., (words)]` words to `[..., (words), (pieces)]` ids."""
        flat, _ = self._unk_if_too_long(words.flat_values)
        return words.with_flat_values(self._fast_word_piece.tokenize(flat))

    def _tokenize_batch(self, text):
        return _merged_inner_rows(self._word_pieces(self._words(text)))

    def _tokenize_batch_with_offsets(self, text):
        text = _sanitize(text)
        normalize = functools.partial(_normalize, lowercase=self.lowercase,
                                      strip_accents=self.strip_accents,
                                      split_on_cjk=self.split_on_cjk)
        table = offsets.char_table(text, normalize)
        special = self._special_pattern if self.special_tokens_in_strings else None
        chunks = offsets.raw_chunks(text, table, _WHITESPACE, special)
        words = offsets.words_of_chunks(chunks, table, normalize, _split_with_offsets)
        flat, too_long = self._unk_if_too_long(words.rows.flat_values)
        ids, begins, ends = self._fast_word_piece.tokenize_with_offsets(flat)
        start, end = offsets.piece_char_spans(words, begins, ends, too_long, table)
        return offsets.pieces_by_text(chunks, words.rows.with_flat_values(ids), start, end,
                                      table)

    @as_written
    def tokenize(self, inputs):
        """Turns strings into token ids (no `[CLS]`/`[SEP]`).

        Args:
            inputs: a string, a list of strings, a NumPy array or a (ragged) string tensor.

        Returns:
            For a single string, a dense 1-D tensor; otherwise a `tf.RaggedTensor` with one
            more ragged dimension than the input. Ids are int32 by default.

        Example:
        >>> tokenizer = BertTokenizer.from_preset("minilm_l6")
        >>> tokenizer.tokenize("Straße").numpy().tolist()
        [2358, 27807]
        """
        text = _as_string_tensor(inputs)
        with tf.device("cpu"):
            return offsets.map_string_batches(
                text, lambda batch: {"ids": self._tokenize_batch(batch)})["ids"]

    @as_written
    def tokenize_with_offsets(self, inputs):
        """Turns strings into token ids, each with its word number and character span.

        A word is one of the tokenizer's own words: text between whitespace, a punctuation
        character, a CJK ideograph or a special token such as `[MASK]`. Spans count Unicode
        characters (as Python indexes a `str`) in the raw input: `text[start:end]` is the text
        the piece came from, before lowercasing and accent stripping. Characters the
        normaliser drops belong to the piece before them inside a word (so the pieces of a
        word tile it); at a word's end only combining accents do, and a zero-width space or
        control character before or after a word is in no span. An `[UNK]` piece spans its
        whole word. Where NFD would reorder spacing combining marks between characters (the
        text does not normalise character by character), every piece of the
        whitespace-delimited chunk spans the whole chunk. Offsets in invalid UTF-8 count the
        characters after each bad sequence became one U+FFFD.

        Args:
            inputs: a string, a list of strings, a NumPy array or a (ragged) string tensor.

        Returns:
            A dict of `"token_ids"` (as `tokenize` gives), `"word_ids"` (int32, counted from
            0 within each text), `"start"` and `"end"` (int64), all of the same shape: dense
            1-D for a single string, otherwise ragged with one more dimension than the input.

        Example:
        >>> tokenizer = BertTokenizer.from_preset("minilm_l6")
        >>> text = "Café au\\u200blait, 東京!"
        >>> pieces = tokenizer.tokenize_with_offsets(text)
        >>> pieces["word_ids"].numpy().tolist()
        [0, 1, 1, 1, 2, 3, 4, 5]
        >>> [text[s:e] for s, e in zip(pieces["start"].numpy(), pieces["end"].numpy())]
        ['Café', 'au\\u200b', 'lai', 't', ',', '東', '京', '!']
        """
        text = _as_string_tensor(inputs)
        with tf.device("cpu"):
            return offsets.map_string_batches(text, self._tokenize_batch_with_offsets)

    @as_written
    def tokenize_words(self, words):
        """Tokenizes pre-split words (a CoNLL sentence), labelling each piece with its word.

        Each given word is tokenized on its own, so one the tokenizer splits further (e.g.
        `"1996-08-22"`) gives several basic words whose pieces all carry its number. A word
        that normalises to nothing (only control characters) gives no pieces: its number is
        simply absent from `"word_ids"`.

        Args:
            words: one sentence as a list or 1-D tensor of words, or a batch of sentences as
                a list of lists or a `[batch, (words)]` (ragged) string tensor.

        Returns:
            A dict of `"token_ids"`, `"word_ids"` (int32: the given word each piece comes
            from), `"first_piece"` (bool: the piece starts its given word) and
            `"basic_word_ids"` (int32: the tokenizer's own word, counted across the
            sentence), dense 1-D for one sentence and `[batch, (pieces)]` for a batch.

        Example:
        >>> tokenizer = BertTokenizer.from_preset("minilm_l6")
        >>> pieces = tokenizer.tokenize_words(["Visited", "Zürich", "1996-08"])
        >>> tokenizer.id_to_token(pieces["token_ids"].numpy()[1])
        'zurich'
        >>> pieces["word_ids"].numpy().tolist(), pieces["first_piece"].numpy().tolist()
        ([0, 1, 2, 2, 2], [True, True, True, False, False])
        >>> pieces["basic_word_ids"].numpy().tolist()
        [0, 1, 2, 3, 4]
        """
        sentences = _as_string_tensor(words)
        with tf.device("cpu"):
            single = isinstance(sentences, tf.Tensor) and sentences.shape.rank == 1
            if single:
                sentences = sentences[tf.newaxis]
            if sentences.shape.rank != 2:
                raise ValueError("`tokenize_words` takes one sentence of words or a batch of "
                                 f"sentences, not a rank {sentences.shape.rank} tensor.")
            if isinstance(sentences, tf.Tensor):
                sentences = tf.RaggedTensor.from_tensor(sentences)
            pieces = self._word_pieces(self._words(sentences.flat_values))
            results = offsets.given_word_ids(sentences, pieces)
            return {key: value[0] for key, value in results.items()} if single else results

    @as_written
    def detokenize(self, inputs):
        """Joins token ids back into text; `##` pieces are glued to the word before.

        Normalisation is not undone: the text comes back lowercased, without accents and
        with spaces around punctuation.

        Args:
            inputs: ids as a list, a list of lists, a NumPy array or a (ragged) tensor.

        Returns:
            A string scalar for one sequence, a 1-D string tensor for a batch.

        Example:
        >>> tokenizer = BertTokenizer.from_preset("minilm_l6")
        >>> tokenizer.detokenize([2358, 27807]).numpy().decode()
        'straße'
        """
        if not isinstance(inputs, (tf.Tensor, tf.RaggedTensor)):
            try:
                inputs = tf.convert_to_tensor(inputs)
            except ValueError:
                inputs = tf.ragged.constant(inputs)
        with tf.device("cpu"):
            if isinstance(inputs, tf.Tensor) and inputs.shape.rank == 1:
                return self._fast_word_piece.detokenize(inputs[tf.newaxis])[0]
            return self._fast_word_piece.detokenize(inputs)

    def call(self, inputs):
        return self.tokenize(inputs)

    # The vocabulary travels in `get_config`, so there are no asset files to write or read.
    def save_assets(self, dir_path):
        pass

    def load_assets(self, dir_path):
        pass

    def get_config(self):
        config = super().get_config()
        # Splitting, the suffix and the unknown token are fixed for BERT, not arguments here.
        for key in ("sequence_length", "split", "suffix_indicator", "oov_token",
                    "special_tokens"):
            config.pop(key, None)
        config.update(
            vocabulary=list(self.vocabulary),
            lowercase=self.lowercase,
            strip_accents=self.strip_accents,
            split_on_cjk=self.split_on_cjk,
            max_input_chars_per_word=self.max_input_chars_per_word,
            special_tokens_in_strings=self.special_tokens_in_strings,
        )
        return config
