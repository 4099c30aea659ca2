"""Where BERT's words and word pieces lie in the raw text, in TensorFlow graph ops.

`BertTokenizer` normalises a text as a whole and then splits it, so its words carry no
positions. Here the sanitised text is first cut into raw chunks at whitespace and at special
tokens, the two places where the normalised text is certain to be cut as well (whitespace is
never dropped, and only ever rewritten to a space). Each chunk is normalised on its own, which
yields the tokenizer's own words, and split with byte offsets into its normalised form.

Every character is also normalised on its own. Where a chunk's characters, normalised one by
one and joined, equal the normalised chunk (always, except where NFD reorders spacing
combining marks that accent stripping keeps), each byte of normalised text traces back to the
raw character that produced it; otherwise every piece of that chunk spans the whole chunk.

Characters are numbered across the whole batch ("global" numbers below) so that one 1-D
search serves every text; they become per-text offsets at the end. See
`BertTokenizer.tokenize_with_offsets` and `BertTokenizer.tokenize_words` for examples.
"""

from typing import NamedTuple

import tensorflow as tf

from keras_mapping.tokenizers.regex_split import regex_split_with_offsets


class CharTable(NamedTuple):
    """Every character of a batch of texts, numbered across the batch."""

    first_char: tf.Tensor  # [texts] global number of each text's first character
    byte_base: tf.Tensor  # [texts] where each text starts in the texts' bytes laid end to end
    byte_starts: tf.Tensor  # [chars] where each character starts in those bytes
    normalized: tf.Tensor  # [chars] each character normalised on its own
    norm_begins: tf.Tensor  # [chars] where that lies in all the normalised characters joined
    norm_ends: tf.Tensor  # [chars]
    # Global numbers of the characters that are not combining marks the normaliser drops
    # (stripped accents), then the number of characters: where a run of such marks ends.
    unmarked: tf.Tensor


class Chunks(NamedTuple):
    """Raw text between whitespace, and the special tokens, in `[texts, (chunks)]` rows."""

    rows: tf.RaggedTensor  # [texts, (chunks)] the raw chunks
    first: tf.Tensor  # [chunks] global number of the chunk's first character
    stop: tf.Tensor  # [chunks] global number of the character after its last
    is_special: tf.Tensor  # [chunks] whether the chunk is a special token, a word of its own


class Words(NamedTuple):
    """The tokenizer's words, in `[chunks, (words)]` rows, and what traces them back."""

    rows: tf.RaggedTensor  # [chunks, (words)] the normalised words
    norm_begins: tf.Tensor  # [words] where each word starts in the joined normalised characters
    norm_ends: tf.Tensor  # [words]
    char_floor: tf.Tensor  # [words] global character range of the word's raw chunk
    char_ceiling: tf.Tensor  # [words]
    traceable: tf.Tensor  # [words] whether its bytes trace back to characters one by one


def count_at_most(sorted_values, values):
    """How many of the 1-D `sorted_values` are at most each of `values`.

    Example:
    >>> count_at_most(tf.constant([1, 3, 3, 5], tf.int64), tf.constant([0, 3, 9], tf.int64))
    <tf.Tensor: shape=(3,), dtype=int64, numpy=array([0, 3, 4])>
    """
    return tf.searchsorted(sorted_values, values, side="right", out_type=tf.int64)


def count_below(sorted_values, values):
    """How many of the 1-D integer `sorted_values` are below each of `values`.

    Example:
    >>> count_below(tf.constant([1, 3, 3, 5], tf.int64), tf.constant([0, 3, 9], tf.int64))
    <tf.Tensor: shape=(3,), dtype=int64, numpy=array([0, 1, 4])>
    """
    # Below v is at most v - 1: one kind of search only, the one TFLite's Flex delegate has.
    return count_at_most(sorted_values, values - 1)


def index_in_row(row_lengths):
    """Position of each value within its row, for rows of the given lengths.

    Example:
    >>> index_in_row(tf.constant([2, 0, 3])).numpy().tolist()
    [0, 1, 0, 1, 2]
    """
    return tf.ragged.range(row_lengths).flat_values


def char_table(text, normalize):
    """Splits a 1-D batch of sanitised texts into characters, each normalised on its own.

    Example:
    >>> table = char_table(tf.constant(["Ab", "e\\u0301!"]), lambda chars: tf.strings.lower(
    ...     tf.strings.regex_replace(chars, r"\\p{Mn}", "")))
    >>> table.first_char.numpy().tolist(), table.norm_ends.numpy().tolist()
    ([0, 2], [1, 2, 3, 3, 4])
    >>> table.unmarked.numpy().tolist()  # the accent is character 3
    [0, 1, 2, 4, 5]
    """
    chars, starts = tf.strings.unicode_split_with_offsets(text, "UTF-8")
    byte_base = tf.cumsum(tf.cast(tf.strings.length(text), tf.int64), exclusive=True)
    normalized = normalize(chars.flat_values)
    lengths = tf.cast(tf.strings.length(normalized), tf.int64)
    norm_ends = tf.cumsum(lengths)
    dropped_mark = tf.logical_and(
        tf.equal(lengths, 0), tf.strings.regex_full_match(chars.flat_values, r"\p{M}"))
    unmarked = tf.concat([tf.where(tf.logical_not(dropped_mark))[:, 0],
                          tf.shape(lengths, out_type=tf.int64)], axis=0)
    return CharTable(
        first_char=chars.row_starts(),
        byte_base=byte_base,
        byte_starts=starts.flat_values + tf.repeat(byte_base, chars.row_lengths()),
        normalized=normalized,
        norm_begins=norm_ends - lengths,
        norm_ends=norm_ends,
        unmarked=unmarked,
    )


def raw_chunks(text, table, whitespace, special):
    """Cuts sanitised texts at `whitespace` and around `special` (a pattern, or `None`)."""
    delimiter = whitespace if special is None else f"{special}|{whitespace}"
    rows, begins, ends = regex_split_with_offsets(text, delimiter, special or "")
    base = tf.repeat(table.byte_base, rows.row_lengths())
    raw = rows.flat_values
    return Chunks(
        rows=rows,
        # Cuts fall on character boundaries: a byte offset finds its character exactly.
        first=count_below(table.byte_starts, begins.flat_values + base),
        stop=count_below(table.byte_starts, ends.flat_values + base),
        is_special=(tf.zeros_like(raw, tf.bool) if special is None
                    else tf.strings.regex_full_match(raw, special)),
    )


def words_of_chunks(chunks, table, normalize, split_with_offsets):
    """The tokenizer's words in each chunk, with what `piece_char_spans` needs to place them.

    Args:
        chunks: the `Chunks` of the texts.
        table: their `CharTable`.
        normalize: the tokenizer's normalisation of a string tensor.
        split_with_offsets: its word split of normalised text, returning byte offsets.
    """
    raw, is_special = chunks.rows.flat_values, chunks.is_special
    normalized = normalize(tf.where(is_special, "", raw))
    words, begins, ends = split_with_offsets(normalized)
    # A special token is one word of its own, after the (no) words of its blanked chunk.
    special_count = tf.cast(is_special, tf.int64)
    specials = tf.RaggedTensor.from_row_lengths(tf.boolean_mask(raw, is_special), special_count)
    no_offsets = tf.RaggedTensor.from_row_lengths(
        tf.zeros_like(specials.flat_values, tf.int64), special_count)
    words = tf.concat([words, specials], axis=1)
    joined = tf.strings.reduce_join(
        tf.gather(table.normalized, tf.ragged.range(chunks.first, chunks.stop)), axis=-1)
    traceable = tf.logical_and(tf.equal(joined, normalized), tf.logical_not(is_special))
    chunk = words.value_rowids()
    chunk_base = tf.gather(tf.gather(table.norm_begins, chunks.first), chunk)
    return Words(
        rows=words,
        norm_begins=chunk_base + tf.concat([begins, no_offsets], axis=1).flat_values,
        norm_ends=chunk_base + tf.concat([ends, no_offsets], axis=1).flat_values,
        char_floor=tf.gather(chunks.first, chunk),
        char_ceiling=tf.gather(chunks.stop, chunk),
        traceable=tf.gather(traceable, chunk),
    )


def piece_char_spans(words, piece_begins, piece_ends, whole_word, table):
    """Global character range of each word piece.

    A piece starts at the character that produced its first byte and ends after the one that
    produced its last. Characters the normaliser drops go with the piece before them inside a
    word, so a word's pieces tile it; after a word's last piece only dropped combining marks
    (stripped accents) do, and other dropped characters (a zero-width space, a control
    character) there or before a word lie outside every span.

    Args:
        words: the `Words` the pieces come from.
        piece_begins, piece_ends: `[words, (pieces)]` byte offsets in each normalised word.
        whole_word: `[words]` words whose pieces span the whole word (`[UNK]` stand-ins).
        table: the `CharTable` of the texts.

    Returns:
        Flat `start` and `end`, global character numbers.
    """
    word = piece_begins.value_rowids()
    word_begin = tf.gather(words.norm_begins, word)
    word_end = tf.gather(words.norm_ends, word)
    whole = tf.gather(whole_word, word)
    begin = tf.where(whole, word_begin, word_begin + piece_begins.flat_values)
    end = tf.where(whole, word_end, word_begin + piece_ends.flat_values)
    start = count_at_most(table.norm_ends, begin)  # characters wholly before the piece
    produced = count_below(table.norm_begins, end)  # characters with output before its end
    within_word = tf.maximum(produced, count_at_most(table.norm_ends, end))
    after_marks = tf.gather(table.unmarked, count_below(table.unmarked, produced))
    stop = tf.where(end < word_end, within_word, after_marks)
    floor = tf.gather(words.char_floor, word)
    ceiling = tf.gather(words.char_ceiling, word)
    traceable = tf.gather(words.traceable, word)
    start = tf.where(traceable, tf.clip_by_value(start, floor, ceiling), floor)
    stop = tf.where(traceable, tf.clip_by_value(stop, floor, ceiling), ceiling)
    return start, stop


def pieces_by_text(chunks, pieces, start, end, table):
    """Lays pieces out as `[texts, (pieces)]` rows with word ids and per-text offsets.

    Args:
        chunks: the `Chunks` of the texts.
        pieces: `[chunks, (words), (pieces)]` token ids.
        start, end: flat global character range of each piece.
        table: the `CharTable` of the texts.
    """
    by_text = chunks.rows.with_flat_values(pieces).merge_dims(1, 3)
    words_per_text = tf.reduce_sum(chunks.rows.with_flat_values(pieces.row_lengths()), axis=1)
    word_ids = tf.cast(index_in_row(words_per_text), tf.int32)
    first_char = tf.gather(table.first_char, by_text.value_rowids())
    return {
        "token_ids": by_text,
        "word_ids": by_text.with_flat_values(tf.repeat(word_ids, pieces.values.row_lengths())),
        "start": by_text.with_flat_values(start - first_char),
        "end": by_text.with_flat_values(end - first_char),
    }


def given_word_ids(sentences, pieces):
    """Pieces of pre-split words, labelled with the words they come from.

    Args:
        sentences: `[sentences, (given words)]` strings.
        pieces: `[given words, (basic words), (pieces)]` token ids.

    Returns:
        `{"token_ids", "word_ids", "first_piece", "basic_word_ids"}`, each
        `[sentences, (pieces)]`.
    """
    by_sentence = sentences.with_flat_values(pieces).merge_dims(1, 3)
    pieces_per_given = pieces.merge_dims(1, 2).row_lengths()
    given_ids = tf.cast(index_in_row(sentences.row_lengths()), tf.int32)
    basic_per_sentence = tf.reduce_sum(sentences.with_flat_values(pieces.row_lengths()), axis=1)
    basic_ids = tf.cast(index_in_row(basic_per_sentence), tf.int32)
    return {
        "token_ids": by_sentence,
        "word_ids": by_sentence.with_flat_values(tf.repeat(given_ids, pieces_per_given)),
        "first_piece": by_sentence.with_flat_values(
            tf.equal(index_in_row(pieces_per_given), 0)),
        "basic_word_ids": by_sentence.with_flat_values(
            tf.repeat(basic_ids, pieces.values.row_lengths())),
    }


def map_string_batches(text, batch_fn):
    """Applies `batch_fn` (1-D strings to a dict of `[batch, ...]` tensors) to any shape.

    A scalar gives its row of each result; a ragged or N-D input gives results with the
    input's dimensions in front, as `BertTokenizer.tokenize` does.

    Example:
    >>> lengths = lambda batch: {"length": tf.strings.length(batch)}
    >>> int(map_string_batches(tf.constant("abc"), lengths)["length"])
    3
    >>> map_string_batches(tf.ragged.constant([["a"], ["bc", ""]]), lengths)["length"]
    <tf.RaggedTensor [[1], [2, 0]]>
    """
    if isinstance(text, tf.Tensor) and text.shape.rank == 0:
        return {key: value[0] for key, value in batch_fn(text[tf.newaxis]).items()}
    if isinstance(text, tf.Tensor) and text.shape.rank > 1:
        text = tf.RaggedTensor.from_tensor(text, ragged_rank=text.shape.rank - 1)
    if isinstance(text, tf.RaggedTensor):
        results = batch_fn(text.flat_values)
        return {key: text.with_flat_values(value) for key, value in results.items()}
    return batch_fn(text)
