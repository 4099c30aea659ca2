"""tf.data pipelines from labeled texts to batches of BERT inputs.

Tokenization runs inside tf.data, in large parallel batches, once (the ids are cached);
batches are padded to their own longest sequence, and training batches can be bucketed by
length so that short sentences are not padded to long ones.
"""

import tensorflow as tf

from keras_mapping.tokenizers import BertPacker

TOKENIZE_CHUNK = 1024
DEFAULT_BUCKETS = (16, 24, 32, 48, 64, 96)


def _examples_dataset(examples):
    texts = tf.constant(examples.texts, tf.string)
    labels = tf.constant(examples.labels, tf.int32)
    if examples.text_pairs is not None:
        return tf.data.Dataset.from_tensor_slices(
            ((texts, tf.constant(examples.text_pairs, tf.string)), labels))
    return tf.data.Dataset.from_tensor_slices(((texts,), labels))


def tokenized_dataset(examples, tokenizer, max_length):
    """One element per example: a tuple of 1-D id tensors (one per text segment) and the
    label. Words beyond `max_length` tokens are cut early to bound memory; the packer makes
    the final cut."""
    def tokenize(segments, labels):
        return tuple(tokenizer.tokenize(text)[:, :max_length] for text in segments), labels

    return (_examples_dataset(examples)
            .batch(TOKENIZE_CHUNK)
            .map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
            .unbatch())


def _bucket_key(boundaries):
    boundaries = tf.constant(boundaries, tf.int32)

    def key(segments, label):
        length = tf.add_n([tf.shape(segment, tf.int32)[0] for segment in segments])
        return tf.cast(tf.reduce_sum(tf.cast(boundaries < length + 2, tf.int32)), tf.int64)

    return key


def classification_dataset(
    examples,
    tokenizer,
    max_length=128,
    batch_size=32,
    shuffle=False,
    seed=None,
    bucket_boundaries=None,
    repeat=False,
    cache=True,
    deterministic=None,
):
    """Batches of `({"token_ids", "segment_ids", "padding_mask"}, labels)` for `model.fit`.

    Args:
        examples: a `keras_mapping.data.LabeledTexts` (pairs are packed as two segments).
        tokenizer: a `keras_mapping.tokenizers.BertTokenizer`.
        max_length: longest packed sequence, special tokens included.
        batch_size: examples per batch.
        shuffle: shuffle the examples (the whole set) each epoch.
        seed: shuffle seed.
        bucket_boundaries: sequence-length boundaries; each batch then holds examples of one
            length range. Orders examples by length, so use it for training only. "auto"
            picks `DEFAULT_BUCKETS` below `max_length`.
        repeat: repeat forever (for step-based training).
        cache: keep the token ids in memory after the first pass, so tokenization runs once.
        deterministic: force a deterministic element order (None keeps tf.data's default).

    Example:
    >>> from keras_mapping.data import from_lists
    >>> from keras_mapping.tokenizers import BertTokenizer
    >>> examples = from_lists(["a fine film", "dull"], [1, 0])
    >>> dataset = classification_dataset(examples, BertTokenizer.from_preset("minilm_l6"))
    >>> inputs, labels = next(iter(dataset))
    >>> inputs["token_ids"].numpy().tolist(), labels.numpy().tolist()
    ([[101, 1037, 2986, 2143, 102], [101, 10634, 102, 0, 0]], [1, 0])
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, got {batch_size}.")
    dataset = tokenized_dataset(examples, tokenizer, max_length)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    if bucket_boundaries == "auto":
        bucket_boundaries = [b for b in DEFAULT_BUCKETS if b < max_length]
    if bucket_boundaries:
        dataset = dataset.group_by_window(
            key_func=_bucket_key(list(bucket_boundaries)),
            reduce_func=lambda key, window: window.ragged_batch(batch_size),
            window_size=batch_size,
        )
    else:
        dataset = dataset.ragged_batch(batch_size)
    packer = BertPacker(tokenizer.cls_token_id, tokenizer.sep_token_id,
                        tokenizer.pad_token_id, max_length=max_length, pad_to_longest=True)
    dataset = dataset.map(lambda segments, labels: (packer(tuple(segments) if len(segments) > 1
                                                           else segments[0]), labels),
                          num_parallel_calls=tf.data.AUTOTUNE)
    if deterministic is not None:
        options = tf.data.Options()
        options.deterministic = deterministic
        dataset = dataset.with_options(options)
    return dataset.prefetch(tf.data.AUTOTUNE)
