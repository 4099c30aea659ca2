"""tf.data pipelines from labeled texts to batches of BERT inputs.

In-memory texts are tokenized once, in large chunks on a thread per core, into
`TokenizedTexts` (which a run that reads a split many times keeps); streams are tokenized
inside tf.data as they pass. Batches are padded to their own longest sequence, and training
batches can be grouped by length (exactly, or into buckets for XLA) so that short sentences
are not padded to long ones.
"""

import collections
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from keras_mapping.tokenizers import BertPacker
from keras_mapping.tracing import as_written

TOKENIZE_CHUNK = 1024
DEFAULT_BUCKETS = (16, 24, 32, 48, 64, 96)


@dataclass(frozen=True)
class TokenizedTexts:
    """Examples whose texts are token ids already, so that a run tokenizes each split once
    for its truncation count, its training rounds and every validation round (each pass
    over a tokenizing pipeline would otherwise rebuild the tokenizer's graph).

    Args:
        examples: the `LabeledTexts` or `TargetTexts` tokenized.
        segments: one `[examples, (ids)]` ragged tensor per text segment, each row cut at
            `max_length` word pieces.
        max_length: the `max_length` they were tokenized for.
    """

    examples: object
    segments: tuple
    max_length: int

    def __len__(self):
        return len(self.examples)

    @property
    def targets(self):
        return self.examples.targets

    @property
    def text_pairs(self):
        return self.examples.text_pairs


# One traced `tokenize` per tokenizer configuration, shared by every pipeline and by every
# tokenizer loaded from the same files (each API call or CLI verb loads its own): tracing
# the tokenizer's graph takes about 0.3 s each time otherwise. The last few are kept, each
# with the tokenizer whose tables it reads.
_TRACED_TOKENIZE = collections.OrderedDict()
_TRACED_TOKENIZE_KEPT = 4


def _tokenizer_key(tokenizer):
    config = {name: value for name, value in tokenizer.get_config().items()
              if name not in ("name", "vocabulary")}
    return (type(tokenizer), json.dumps(config, sort_keys=True, default=str),
            tuple(tokenizer.vocabulary))


def _traced_tokenize(tokenizer):
    key = _tokenizer_key(tokenizer)
    if key not in _TRACED_TOKENIZE:
        # Without autograph: the tokenizer branches on static shapes only, and converting
        # its code and tensorflow-text's took 0.6 of the 0.9 s of each trace.
        _TRACED_TOKENIZE[key] = tf.function(
            tokenizer.tokenize, input_signature=[tf.TensorSpec([None], tf.string)],
            autograph=False)
        while len(_TRACED_TOKENIZE) > _TRACED_TOKENIZE_KEPT:
            _TRACED_TOKENIZE.popitem(last=False)
    _TRACED_TOKENIZE.move_to_end(key)
    return _TRACED_TOKENIZE[key]


def _token_id_chunks(stream, tokenizer, max_length):
    """A stream of `((texts...), target)` as chunks of `TOKENIZE_CHUNK` examples,
    `((ids per segment), targets)`, tokenized in parallel. Words beyond `max_length` tokens
    are cut early to bound memory; the packer makes the final cut."""
    tokenize_batch = _traced_tokenize(tokenizer)

    @as_written
    def tokenize(segments, labels):
        return tuple(tokenize_batch(text)[:, :max_length] for text in segments), labels

    return (stream
            .batch(TOKENIZE_CHUNK)
            .map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
            .with_options(pipeline_options()))


def tokenize_texts(examples, tokenizer, max_length):
    """`TokenizedTexts` of in-memory examples (streams and tokenized examples are returned
    as they are).

    The traced tokenizer is called on chunks of `TOKENIZE_CHUNK` texts straight from a
    thread per core (its ops release the GIL), not through tf.data: building a pipeline
    costs about 0.7 s of tracing, more than tokenizing all of SST-2's training texts takes
    this way (0.5 s on two cores).

    Example:
    >>> from keras_mapping.data import from_lists
    >>> from keras_mapping.tokenizers import BertTokenizer
    >>> tokenizer = BertTokenizer.from_preset("minilm_l6")
    >>> tokenized = tokenize_texts(from_lists(["a fine film", "dull"], [1, 0]), tokenizer, 8)
    >>> tokenized.segments[0].to_list()
    [[1037, 2986, 2143], [10634]]
    """
    if isinstance(examples, (tf.data.Dataset, TokenizedTexts)):
        return examples
    tokenize_batch = _traced_tokenize(tokenizer)
    columns = [examples.texts] + ([] if examples.text_pairs is None else [examples.text_pairs])
    starts = range(0, len(examples), TOKENIZE_CHUNK)

    def tokenize(column):
        def chunk(start):
            texts = tf.constant(list(column[start:start + TOKENIZE_CHUNK]), tf.string)
            return tokenize_batch(texts)[:, :max_length]

        with ThreadPoolExecutor(max(1, min(len(starts), os.cpu_count() or 1))) as pool:
            chunks = list(pool.map(chunk, starts))
        if not chunks:
            return tf.RaggedTensor.from_row_lengths(tf.zeros([0], tokenizer.compute_dtype),
                                                    tf.zeros([0], tf.int64))
        return tf.concat(chunks, axis=0)

    return TokenizedTexts(examples, tuple(tokenize(column) for column in columns), max_length)


def tokenized_dataset(examples, tokenizer, max_length):
    """One element per example: a tuple of 1-D id tensors (one per text segment) and the
    target; tokenized here unless `examples` are `TokenizedTexts`."""
    if isinstance(examples, tf.data.Dataset):
        return _token_id_chunks(examples, tokenizer, max_length).unbatch()
    if not isinstance(examples, TokenizedTexts):
        examples = tokenize_texts(examples, tokenizer, max_length)
    if examples.max_length != max_length:
        raise ValueError(f"These texts were tokenized for max_length={examples.max_length}, "
                         f"not {max_length}: tokenize them again.")
    return tf.data.Dataset.from_tensor_slices(
        (examples.segments, tf.constant(examples.targets)))


def truncated_count(examples, tokenizer, max_length):
    """How many examples hold more tokens than `max_length` leaves after `[CLS]` and the
    `[SEP]`s, so that the packer cuts them (`examples` in memory, or `TokenizedTexts`).

    Example:
    >>> from keras_mapping.data import from_lists
    >>> from keras_mapping.tokenizers import BertTokenizer
    >>> tokenizer = BertTokenizer.from_preset("minilm_l6")
    >>> truncated_count(from_lists(["a short one", "a b c d e f g h"], [0, 1]), tokenizer, 8)
    1
    """
    if isinstance(examples, tf.data.Dataset):
        raise TypeError("truncated_count counts examples held in memory, not a stream.")
    tokenized = tokenize_texts(examples, tokenizer, max_length)
    room = max_length - len(tokenized.segments) - 1
    lengths = sum(segment.row_lengths().numpy() for segment in tokenized.segments)
    return int(np.sum(lengths > room))


def _length_key(boundaries):
    """Groups by bucket index, or by exact packed length when there are no boundaries."""
    boundaries = None if boundaries is None else tf.constant(boundaries, tf.int32)

    @as_written
    def key(segments, label):
        length = tf.add_n([tf.shape(segment, tf.int32)[0] for segment in segments])
        if boundaries is None:
            return tf.cast(length, tf.int64)
        return tf.cast(tf.reduce_sum(tf.cast(boundaries < length + 2, tf.int32)), tf.int64)

    return key


def pad_to_bucket(boundaries):
    """Pads a packed batch to the smallest boundary that holds it, so that only
    `len(boundaries)` shapes ever reach the model (one compiled graph each)."""
    boundaries = tf.constant(boundaries, tf.int32)

    def pad(inputs):
        length = tf.shape(inputs["token_ids"], tf.int32)[1]
        index = tf.minimum(tf.searchsorted(boundaries, [length])[0], tf.size(boundaries) - 1)
        extra = tf.maximum(boundaries[index] - length, 0)
        return {name: tf.pad(value, [[0, 0], [0, extra]]) for name, value in inputs.items()}

    return pad


def length_buckets(max_length, boundaries="auto"):
    """Sorted sequence-length boundaries ending at `max_length`."""
    if boundaries is None:
        return None
    if boundaries == "auto":
        boundaries = DEFAULT_BUCKETS
    return sorted({b for b in boundaries if b < max_length} | {max_length})


def text_dataset(
    examples,
    tokenizer,
    max_length=128,
    batch_size=32,
    shuffle=False,
    seed=None,
    buckets="auto",
    group_by_length=False,
    repeat=False,
    deterministic=None,
):
    """Batches of `({"token_ids", "segment_ids", "padding_mask"}, targets)` for `model.fit`,
    for every text task: the targets are the examples' `targets` (class ids, scores or 0/1
    rows).

    Each batch is padded to the smallest length bucket that holds its longest example, never
    to a fixed 512: short sentences cost short sequences, and the model sees only a handful
    of shapes (each compiles once, with or without XLA).

    Args:
        examples: `LabeledTexts` or `TargetTexts` (pairs are packed as two segments), or
            a `tf.data.Dataset` of `((text[, text_pair]), target)`: a stream, perhaps
            larger than memory, that must come shuffled and is never cached here.
            In-memory examples are tokenized once, when the pipeline is built.
        tokenizer: a `keras_mapping.tokenizers.BertTokenizer`.
        max_length: longest packed sequence, special tokens included.
        batch_size: examples per batch.
        shuffle: shuffle the examples (the whole set) each epoch.
        seed: shuffle seed.
        buckets: sequence-length boundaries to pad to; "auto" uses `DEFAULT_BUCKETS` below
            `max_length`; None pads each batch to its own longest example.
        group_by_length: fill each batch with examples of one bucket, or of one exact length
            when `buckets` is None (no padding at all); changes the order, so for training.
        repeat: repeat forever (for step-based training).
        deterministic: force a deterministic element order (None keeps tf.data's default).

    Example:
    >>> from keras_mapping.data import from_lists
    >>> from keras_mapping.tokenizers import BertTokenizer
    >>> examples = from_lists(["a fine film", "dull"], [1, 0])
    >>> dataset = text_dataset(examples, BertTokenizer.from_preset("minilm_l6"),
    ...                                  buckets=None)
    >>> inputs, labels = next(iter(dataset))
    >>> inputs["token_ids"].numpy().tolist(), labels.numpy().tolist()
    ([[101, 1037, 2986, 2143, 102], [101, 10634, 102, 0, 0]], [1, 0])
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, got {batch_size}.")
    streamed = isinstance(examples, tf.data.Dataset)
    if streamed and shuffle:
        raise ValueError("A `tf.data.Dataset` of examples is streamed: shuffle it before "
                         "(in a bounded buffer) and pass shuffle=False.")
    boundaries = length_buckets(max_length, buckets)
    dataset = tokenized_dataset(examples, tokenizer, max_length)
    if shuffle:
        dataset = dataset.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = _batched(dataset, batch_size, boundaries, group_by_length)
    dataset = dataset.map(_packer(tokenizer, max_length, boundaries),
                          num_parallel_calls=tf.data.AUTOTUNE)
    if not repeat and not group_by_length and not streamed:
        # Unbatching hid the size; stating it gives Keras its progress-bar totals and keeps
        # it from warning that a finite evaluation set "ran out of data".
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(
            math.ceil(len(examples) / batch_size)))
    return dataset.with_options(pipeline_options(deterministic)).prefetch(tf.data.AUTOTUNE)


def _batched(dataset, batch_size, boundaries, group_by_length):
    """Ragged batches, filled per length bucket (or exact length) when grouping."""
    if not group_by_length:
        return dataset.ragged_batch(batch_size)
    return dataset.group_by_window(
        key_func=_length_key(boundaries[:-1] if boundaries else None),
        reduce_func=as_written(lambda key, window: window.ragged_batch(batch_size)),
        window_size=batch_size)


def _packer(tokenizer, max_length, boundaries):
    """`pack(segments, targets)`: a batch of ids to padded BERT inputs."""
    packer = BertPacker(tokenizer.cls_token_id, tokenizer.sep_token_id,
                        tokenizer.pad_token_id, max_length=max_length, pad_to_longest=True)
    pad = pad_to_bucket(boundaries) if boundaries else (lambda inputs: inputs)

    @as_written
    def pack(segments, targets):
        return pad(packer(tuple(segments) if len(segments) > 1 else segments[0])), targets

    return pack


def pipeline_options(deterministic=None):
    options = tf.data.Options()
    # tf.data's autotuner wakes at 0.01 s, 0.03 s, ... 2.55 s, 5.11 s, 10.23 s after an
    # iterator starts, and Keras' `fit` returns only after its next wake-up: a 1.8 s fit took
    # 2.6 s. Tuning gains nothing here (same batches per second over 20,000 SST-2 texts);
    # AUTOTUNE parallelism then means one call per core.
    options.autotune.enabled = False
    if deterministic is not None:
        options.deterministic = deterministic
    return options

# The name from before regression and multi-label targets; the same pipeline.
classification_dataset = text_dataset
