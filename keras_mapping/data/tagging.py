"""Token classification in tf.data: word tags aligned to word pieces, sentences longer than
the model cut into overlapping windows, and the way back from window outputs to one tag per
word.

Alignment: every word the tokenizer splits out (its "basic" words: "1996-08-22" is five)
is labelled on its first piece, so that raw text at prediction time, split the same way,
meets only trained positions. The first basic word of a given word carries the word's tag,
the rest its continuation (`B-X` becomes `I-X`); with `label_all_pieces` every piece is
labelled, not only the first of each basic word. Other pieces weigh 0 in the loss.

Windows: a sentence of more pieces than `max_length - 2` is cut into windows every `stride`
pieces; each piece is trained and predicted in exactly one of them, the one that gives it
the most context (`keras_mapping.data.windows`).
"""

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from keras_mapping.data.pipelines import pad_to_bucket, pipeline_options
from keras_mapping.data.windows import window_owners, window_spans
from keras_mapping.tracing import as_written

IGNORED = -1  # target of a piece that is not scored


def continuation_ids(tag_names):
    """For each tag id, the id of the tag that continues it (`B-X` -> `I-X`; others stay).

    Example:
    >>> continuation_ids(["O", "B-PER", "I-PER", "B-LOC"]).tolist()
    [0, 2, 2, 3]
    """
    index = {name: i for i, name in enumerate(tag_names)}
    return np.array([index.get("I-" + name[2:], i) if name.startswith("B-") else i
                     for i, name in enumerate(tag_names)], "int32")


def piece_targets(word_ids, basic_word_ids, word_tags, continuation, label_all_pieces=False):
    """The target of each piece of one sentence (`IGNORED` for unscored pieces).

    Args:
        word_ids: the given word of each piece.
        basic_word_ids: the tokenizer's word of each piece.
        word_tags: the tag id of each given word.
        continuation: `continuation_ids` of the tag set.
        label_all_pieces: label every piece, not only the first of each basic word.

    Example:
    >>> # "Jean-Luc" (B-PER) splits into "jean", "-", "luc", and "luc" into "lu", "##c".
    >>> piece_targets([0, 0, 0, 0], [0, 1, 2, 2], np.array([1]), np.array([0, 2, 2])).tolist()
    [1, 2, 2, -1]
    """
    word_ids, basic_word_ids = np.asarray(word_ids), np.asarray(basic_word_ids)
    if word_ids.size == 0:
        return np.zeros(0, "int32")
    starts_word = np.r_[True, word_ids[1:] != word_ids[:-1]]
    starts_basic = np.r_[True, basic_word_ids[1:] != basic_word_ids[:-1]]
    tags = np.asarray(word_tags, "int32")[word_ids]
    targets = np.where(starts_word, tags, np.asarray(continuation)[tags])
    return (targets if label_all_pieces else np.where(starts_basic, targets, IGNORED)).astype(
        "int32")


@dataclass(frozen=True)
class Windows:
    """Model inputs of tagged (or to-be-tagged) sentences, one row per window.

    Args:
        token_ids: per window, `[CLS]` + its pieces + `[SEP]` (int32 arrays).
        targets: per window, a target per position (`IGNORED` where not scored).
        scored_words: per window, the word whose tag each position gives (-1 elsewhere):
            the first piece of each word, in the window that owns it.
        sentences: the sentence of each window.
        word_counts: words per sentence (words without pieces are never scored).
        word_spans: for raw texts, the `(start, end)` characters of each word, else None.
    """

    token_ids: list
    targets: list
    scored_words: list
    sentences: np.ndarray
    word_counts: list
    word_spans: list | None = None

    def __len__(self):
        return len(self.token_ids)

    def word_predictions(self, position_values, fill):
        """Per sentence, the value at each word's scored position (`fill` for words never
        scored); `position_values[w][p]` is the value of window w at position p."""
        words = [np.full(count, fill, dtype=object) for count in self.word_counts]
        for window, scored in enumerate(self.scored_words):
            positions = np.flatnonzero(scored >= 0)
            sentence = words[self.sentences[window]]
            for position in positions:
                sentence[scored[position]] = position_values[window][position]
        return words


def window_sentences(pieces, scored_starts, targets, max_length, stride, cls_id, sep_id):
    """Cuts each sentence's pieces into `Windows`.

    Args:
        pieces: per sentence, its piece ids.
        scored_starts: per sentence, the word id at each piece that starts a scored word,
            -1 at other pieces.
        targets: per sentence, piece targets, or None to predict.
        max_length: the model's sequence length (`[CLS]` and `[SEP]` included).
        stride: pieces between window starts; None for half a window.
        cls_id, sep_id: the special token ids.
    """
    capacity = max_length - 2
    stride = stride or max(1, capacity // 2)
    out = {"token_ids": [], "targets": [], "scored_words": [], "sentences": []}
    for sentence, ids in enumerate(pieces):
        spans = window_spans(len(ids), capacity, stride)
        owners = window_owners(len(ids), spans)
        for index, (start, end) in enumerate(spans):
            owned = owners[start:end] == index
            wanted = targets[sentence][start:end] if targets is not None else np.full(
                end - start, IGNORED)
            out["token_ids"].append(np.r_[cls_id, ids[start:end], sep_id].astype("int32"))
            out["targets"].append(np.r_[IGNORED, np.where(owned, wanted, IGNORED),
                                        IGNORED].astype("int32"))
            out["scored_words"].append(np.r_[-1, np.where(
                owned, scored_starts[sentence][start:end], -1), -1].astype("int32"))
            out["sentences"].append(sentence)
    out["sentences"] = np.asarray(out["sentences"], "int64")
    return out


def tagging_dataset(windows, batch_size, shuffle=False, seed=None, repeat=False,
                    group_by_length=False, boundaries=None, deterministic=None):
    """Batches of `({"token_ids", "segment_ids", "padding_mask"}, targets, weights)`: the
    targets of unscored positions are 0 with weight 0.

    Args:
        windows: `Windows`.
        batch_size: windows per batch.
        shuffle, seed, repeat: for training.
        group_by_length: fill each batch with windows of one length, or of one bucket with
            `boundaries` (training).
        boundaries: sorted lengths to pad batches to (the smallest that holds the batch),
            for XLA's few shapes; None pads each batch to its longest window.
        deterministic: force a deterministic element order (None keeps tf.data's default).
    """
    lengths = [len(ids) for ids in windows.token_ids]
    ragged = {"token_ids": tf.ragged.constant(windows.token_ids, tf.int32, ragged_rank=1),
              "targets": tf.ragged.constant(windows.targets, tf.int32, ragged_rank=1)}
    dataset = tf.data.Dataset.from_tensor_slices(ragged)
    if shuffle:
        dataset = dataset.shuffle(len(lengths), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    if group_by_length:
        dataset = dataset.group_by_window(
            key_func=_length_key(boundaries),
            reduce_func=as_written(lambda key, window: window.ragged_batch(batch_size)),
            window_size=batch_size)
    else:
        dataset = dataset.ragged_batch(batch_size)
    dataset = dataset.map(_padded(boundaries), num_parallel_calls=tf.data.AUTOTUNE)
    if not repeat and not group_by_length:
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(
            math.ceil(len(lengths) / batch_size)))
    return dataset.with_options(pipeline_options(deterministic)).prefetch(tf.data.AUTOTUNE)


def _length_key(boundaries):
    """Groups windows by exact length, or by the bucket that holds them."""
    edges = None if boundaries is None else tf.constant(boundaries[:-1], tf.int32)

    @as_written
    def key(window):
        length = tf.shape(window["token_ids"], tf.int32)[0]
        if edges is None:
            return tf.cast(length, tf.int64)
        return tf.cast(tf.reduce_sum(tf.cast(edges < length, tf.int32)), tf.int64)

    return key


def _padded(boundaries):
    """Pads a ragged batch to its longest window (or bucket); unscored targets become 0
    with weight 0."""
    to_bucket = pad_to_bucket(boundaries) if boundaries else (lambda inputs: inputs)

    @as_written
    def pad(batch):
        ids = batch["token_ids"]
        targets = batch["targets"].to_tensor(IGNORED)
        padded = to_bucket({"token_ids": ids.to_tensor(0),
                            "padding_mask": tf.ones_like(ids, tf.bool).to_tensor(False),
                            "weights": tf.cast(targets >= 0, tf.float32),
                            "targets": tf.maximum(targets, 0)})
        features = {"token_ids": padded["token_ids"],
                    "segment_ids": tf.zeros_like(padded["token_ids"]),
                    "padding_mask": padded["padding_mask"]}
        return features, padded["targets"], padded["weights"]

    return pad
