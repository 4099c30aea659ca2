"""tf.data pipelines for BERT pretraining: next-sentence pairs and dynamic masking.

Examples are in-memory `LabeledTexts` (tokenized once and shuffled whole) or, for corpora of
any size, a `tf.data.Dataset` of `((text[, text_pair]), label)` streamed as given
(`keras_mapping.data.corpus_stream.training_examples` shuffles it in a bounded buffer).

Masks are drawn anew for each batch (dynamic masking, as in RoBERTa), inside tf.data, by
`mask_tokens` (BERT's 80/10/10 rule; special tokens are never selected) from stateless random
numbers, so a seed fixes them. Batches reuse the classification pipeline: exact-length
batches, packing, caching of in-memory token ids.
"""

import math

import numpy as np
import tensorflow as tf

from keras_mapping.data.pipelines import classification_dataset
from keras_mapping.tracing import as_written

IS_NEXT, NOT_NEXT = 0, 1  # BertPretrainer's next-sentence labels, as in BERT


NSP_CHUNK = 256  # pairs that draw their random second sentences from each other


def neighbour_pairs(chunks):
    """The pairs of neighbouring sentences of each document, from chunks of records in
    document order (one file's `keras_mapping.data.corpus_stream.corpus_records`).

    Args:
        chunks: a dataset of `{"sentence", "document", "position"}`, each a 1-D tensor of
            consecutive records; a document may go on from one chunk into the next.

    Returns:
        A dataset of chunks `{"first", "second", "document"}`: every sentence with the next
        one of its document.

    Example:
    >>> chunks = tf.data.Dataset.from_tensor_slices({
    ...     "sentence": [["A.", "B."], ["C.", "X."]],
    ...     "document": tf.constant([[7, 7], [7, 9]], tf.int64),
    ...     "position": tf.constant([[0, 1], [2, 0]], tf.int64)})
    >>> [(a.numpy(), b.numpy()) for pairs in neighbour_pairs(chunks)
    ...  for a, b in zip(pairs["first"], pairs["second"])]
    [(b'A.', b'B.'), (b'B.', b'C.')]
    """
    @as_written
    def follow(previous, chunk):
        # `previous` is the last record seen, which may begin a pair with this chunk's first.
        joined = {name: tf.concat([previous[name], chunk[name]], 0) for name in previous}
        follows = ((joined["position"][1:] == joined["position"][:-1] + 1)
                   & (joined["document"][1:] == joined["document"][:-1]))
        pairs = {"first": tf.boolean_mask(joined["sentence"][:-1], follows),
                 "second": tf.boolean_mask(joined["sentence"][1:], follows),
                 "document": tf.boolean_mask(joined["document"][1:], follows)}
        return {name: value[-1:] for name, value in joined.items()}, pairs

    nothing = {"sentence": tf.constant([""]), "document": tf.constant([-1], tf.int64),
               "position": tf.constant([-2], tf.int64)}  # a record nothing follows
    return chunks.scan(nothing, follow)


def with_random_second_sentences(pairs, seed=0, random_rate=0.5):
    """Next-sentence examples from neighbouring pairs: with probability `random_rate` the
    second sentence is replaced by a sentence of another document (label `NOT_NEXT`), else
    kept (`IS_NEXT`).

    The random sentences come from the stream itself: each chunk of `NSP_CHUNK` pairs
    (drawn from a shuffle buffer for training) trades second sentences between its own
    pairs, so no corpus-wide index is needed. A draw that lands on the same document
    (possible only when a chunk holds few documents) keeps the true next sentence.

    Args:
        pairs: a dataset of `{"first", "second", "document"}` (`neighbour_pairs`).
        seed: the draws of chunk `i` come from the stateless seed `(seed, i)`.
        random_rate: share of second sentences to replace.

    Returns:
        A dataset of `((first, second), label)`, labels `IS_NEXT` (0) or `NOT_NEXT` (1).
    """
    @as_written
    def draw(index, chunk):
        size = tf.shape(chunk["first"])[0]
        choice_seed, partner_seed = tf.unstack(tf.random.experimental.stateless_split(
            tf.stack([tf.constant(seed, tf.int64), index]), 2))
        chosen = tf.random.stateless_uniform([size], choice_seed) < random_rate
        # Another pair of the chunk: an offset in [1, size - 1] never points back at itself.
        offsets = 1 + tf.cast(tf.random.stateless_uniform([size], partner_seed)
                              * tf.cast(size - 1, tf.float32), tf.int32)
        partners = tf.math.floormod(tf.range(size) + offsets, size)
        replaced = chosen & (tf.gather(chunk["document"], partners) != chunk["document"])
        seconds = tf.where(replaced, tf.gather(chunk["second"], partners), chunk["second"])
        return (chunk["first"], seconds), tf.where(replaced, NOT_NEXT, IS_NEXT)

    return pairs.batch(NSP_CHUNK).enumerate().map(draw).unbatch()


def mask_tokens(token_ids, selectable, seed, *, mask_rate, mask_token_id, vocabulary_size,
                word_ids=None, mask_token_rate=0.8, random_token_rate=0.1, slots=None):
    """BERT's masking of a batch, drawn from stateless random numbers of `seed`.

    Each row selects `ceil(mask_rate * n)` of its `n` selectable units (tokens, or whole
    words with `word_ids`); a selected unit becomes `[MASK]` with probability
    `mask_token_rate`, a random token with `random_token_rate`, and stays otherwise. The same
    `seed` gives the same masks, so a rerun or a resumed run sees the batches it saw before;
    stateful random ops in a tf.data function do not (their seeds depend on how the graph was
    traced, and parallel calls take draws in any order).

    Args:
        token_ids: int tensor `[batch, length]`.
        selectable: bool tensor `[batch, length]`: tokens that may be predicted.
        seed: int32 tensor of shape `[2]`.
        mask_rate: share of selectable units to predict.
        mask_token_id: id of `[MASK]`.
        vocabulary_size: random replacements are drawn from `[0, vocabulary_size)`.
        word_ids: optional int tensor `[batch, length]`: the word (counted from 0 in its row)
            of each token; the tokens of one word are selected and replaced together.
        mask_token_rate: share of selected units replaced by `[MASK]`.
        random_token_rate: share of selected units replaced by a random token.
        slots: pad the predictions to this many per row, for shapes that do not change
            between batches (XLA, TPUs); None pads to the fullest row. A row with more
            selected tokens fails with an error saying so.

    Returns:
        `(masked_ids, positions, labels, weights)`: the masked batch, and per row the
        selected positions, their original ids and 1.0 weights, padded (weight 0) to the
        fullest row or to `slots`.

    Example:
    >>> import tensorflow as tf
    >>> ids = tf.constant([[101, 2023, 2003, 2204, 102, 0]])  # [CLS] this is good [SEP] [PAD]
    >>> masked, positions, labels, weights = mask_tokens(
    ...     ids, ids > 102, tf.constant([1, 2]), mask_rate=0.5, mask_token_id=103,
    ...     vocabulary_size=30522)
    >>> int(tf.reduce_sum(weights))  # ceil(0.5 * 3)
    2
    """
    batch, length = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
    columns = tf.broadcast_to(tf.range(length), [batch, length])
    word_ids = columns if word_ids is None else tf.cast(word_ids, tf.int32)
    selection_seed, choice_seed, replacement_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 3))
    # Units are numbered below `length` in each row, so `[batch, length]` holds them all.
    unit_selectable = tf.reshape(tf.math.unsorted_segment_max(
        tf.cast(tf.reshape(selectable, [-1]), tf.int32),
        tf.reshape(word_ids + tf.range(batch)[:, None] * length, [-1]),
        batch * length), [batch, length]) > 0
    count = tf.reduce_sum(tf.cast(unit_selectable, tf.float32), axis=1)
    to_select = tf.cast(tf.math.ceil(count * mask_rate), tf.int32)
    scores = tf.where(unit_selectable,
                      tf.random.stateless_uniform([batch, length], selection_seed), 2.0)
    ranks = tf.argsort(tf.argsort(scores, axis=1), axis=1)
    unit_selected = (ranks < to_select[:, None]) & unit_selectable
    selected = tf.gather(unit_selected, word_ids, batch_dims=1) & selectable
    choice = tf.gather(tf.random.stateless_uniform([batch, length], choice_seed), word_ids,
                       batch_dims=1)
    random_ids = tf.random.stateless_uniform([batch, length], replacement_seed, maxval=
                                             vocabulary_size, dtype=tf.int32)
    replacement = tf.where(choice < mask_token_rate, mask_token_id,
                           tf.where(choice < mask_token_rate + random_token_rate, random_ids,
                                    token_ids))
    masked_ids = tf.where(selected, replacement, token_ids)
    pack = _left_packing(selected, slots)
    return (masked_ids, pack(columns), pack(tf.cast(token_ids, tf.int32)),
            pack(tf.ones_like(columns, tf.float32)))


def _left_packing(selected, slots=None):
    """`pack(values)`: each row's selected values moved to its front, in order, then zeros,
    as wide as the fullest row or as `slots`. What `tf.ragged.boolean_mask(values,
    selected).to_tensor()` gives, in dense ops: the ragged mask traced into hundreds of
    graph nodes, which every tf.data iterator paid to instantiate."""
    length = tf.shape(selected)[1]
    columns = tf.range(length)[tf.newaxis, :]
    # Selected columns sort first; the keys are unique, so each part keeps its order.
    order = tf.argsort(tf.where(selected, columns, length + columns), axis=1)
    count = tf.reduce_sum(tf.cast(selected, tf.int32), axis=1)
    # A batch with nothing selectable keeps one weightless prediction slot.
    width = tf.maximum(tf.reduce_max(tf.concat([count, [0]], 0)), 1 if slots is None else 0)
    if slots is not None:
        with tf.control_dependencies([tf.debugging.assert_less_equal(
                width, slots, message=f"a sequence has more tokens to predict than the "
                                      f"{slots} prediction slots")]):
            width = tf.identity(width)
    order, filled = order[:, :width], tf.range(width)[tf.newaxis, :] < count[:, tf.newaxis]

    def pack(values):
        taken = tf.gather(values, order, batch_dims=1)
        packed = tf.where(filled, taken, tf.zeros_like(taken))
        if slots is None:
            return packed
        return tf.ensure_shape(tf.pad(packed, [[0, 0], [0, slots - width]]), [None, slots])

    return pack


def _masking(tokenizer, mask_rate, whole_word, seed, slots=None):
    """`mask(index, inputs)` for the batch numbered `index`: its seed is `(seed, index)`."""
    specials = tf.constant([tokenizer.cls_token_id, tokenizer.sep_token_id,
                            tokenizer.pad_token_id])
    continuation = tf.constant([token.startswith("##") for token in tokenizer.get_vocabulary()])

    def mask(index, inputs):
        token_ids = tf.cast(inputs["token_ids"], tf.int32)
        selectable = tf.logical_not(tf.reduce_any(token_ids[..., None] == specials, axis=-1))
        selectable &= tf.cast(inputs["padding_mask"], tf.bool)
        word_ids = None
        if whole_word:
            # A piece whose token starts with "##" continues the word before it.
            starts = tf.logical_not(tf.gather(continuation, token_ids))
            word_ids = tf.maximum(tf.cumsum(tf.cast(starts, tf.int32), axis=1) - 1, 0)
        masked_ids, positions, labels, weights = mask_tokens(
            token_ids, selectable, tf.stack([tf.constant(seed, tf.int32),
                                             tf.cast(index, tf.int32)]),
            mask_rate=mask_rate, mask_token_id=tokenizer.mask_token_id,
            vocabulary_size=tokenizer.vocabulary_size(), word_ids=word_ids, slots=slots)
        return dict(inputs, token_ids=masked_ids, mask_positions=positions), labels, weights

    return mask


def prediction_slots(max_length, mask_rate, whole_word=False):
    """Predictions per sequence that always suffice: `ceil(mask_rate * max_length)` tokens,
    or `max_length` with whole-word masking (a chosen word may have any number of pieces).

    Example:
    >>> prediction_slots(128, 0.15)
    20
    """
    return max_length if whole_word else math.ceil(mask_rate * max_length)


def _length_grouped_batches(examples, tokenizer, max_length, batch_size, shuffle, seed,
                            repeat, static_shapes):
    """Packed batches of one length (or length bucket) each. In-memory examples are tokenized
    once and shuffled whole; a `tf.data.Dataset` is a stream (perhaps larger than memory) and
    comes through in its own order, uncached."""
    streamed = isinstance(examples, tf.data.Dataset)
    return classification_dataset(examples, tokenizer, max_length=max_length,
                                  batch_size=batch_size, shuffle=shuffle and not streamed,
                                  seed=seed, buckets="auto" if static_shapes else None,
                                  group_by_length=True, repeat=repeat)


def masked_lm_dataset(examples, tokenizer, max_length=128, batch_size=32, mask_rate=0.15,
                      whole_word=False, next_sentence=False, shuffle=True, seed=None,
                      repeat=False, static_shapes=False):
    """Batches for `BertMaskedLM` (or, with `next_sentence`, `BertPretrainer`).

    Args:
        examples: single sentences (labels unused), or with `next_sentence` sentence pairs
            labelled `IS_NEXT`/`NOT_NEXT`: `LabeledTexts`, or a stream (`tf.data.Dataset`
            of `((text[, text_pair]), label)`, such as `corpus_stream.training_examples`).
        tokenizer: a `keras_mapping.tokenizers.BertTokenizer`.
        max_length: longest packed sequence.
        batch_size: sequences per batch.
        mask_rate: share of (non-special) tokens selected for prediction; with `whole_word`,
            the share of words.
        whole_word: select whole words: every piece of a chosen word is predicted
            (tensorflow-text's masking over `[batch, (words), (pieces)]`).
        next_sentence: also yield the next-sentence labels, for `BertPretrainer`.
        shuffle: shuffle each pass (`LabeledTexts`; a stream comes in its own order).
        seed: seed of the shuffle and of the masks (batch `i` is masked with the stateless
            seed `(seed, i)`, so the same seed gives the same batches); None draws one from
            NumPy's global generator.
        repeat: repeat forever.
        static_shapes: pad sequences to a few length buckets (`DEFAULT_BUCKETS` below
            `max_length`) and predictions to `prediction_slots(...)` per sequence, so that
            XLA and TPUs compile a handful of shapes instead of one per batch.

    Returns:
        A dataset of `(inputs, mask_ids, mask_weights)`, or with `next_sentence`
        `(inputs, {"mlm": mask_ids, "nsp": labels}, {"mlm": mask_weights, "nsp": ones})`;
        `inputs` holds
        the masked `token_ids`, `segment_ids`, `padding_mask` and `mask_positions`.

    Example:
    >>> from keras_mapping.data import from_lists
    >>> from keras_mapping.tokenizers import BertTokenizer
    >>> tokenizer = BertTokenizer.from_preset("minilm_l6")
    >>> sentences = from_lists(["a fine film with a great cast"] * 4, [0] * 4)
    >>> inputs, mask_ids, mask_weights = next(iter(masked_lm_dataset(
    ...     sentences, tokenizer, batch_size=4, mask_rate=0.3, seed=0)))
    >>> sorted(inputs), tuple(mask_ids.shape) == tuple(inputs["mask_positions"].shape)
    (['mask_positions', 'padding_mask', 'segment_ids', 'token_ids'], True)
    """
    batches = _length_grouped_batches(examples, tokenizer, max_length, batch_size, shuffle,
                                      seed, repeat, static_shapes)
    slots = prediction_slots(max_length, mask_rate, whole_word) if static_shapes else None
    mask = _masking(tokenizer, mask_rate, whole_word,
                    np.random.randint(2**31 - 1) if seed is None else seed, slots)

    @as_written
    def with_masks(index, batch):
        inputs, labels = batch
        features, mask_ids, mask_weights = mask(index, inputs)
        if next_sentence:
            return (features, {"mlm": mask_ids, "nsp": labels},
                    {"mlm": mask_weights, "nsp": tf.ones_like(labels, tf.float32)})
        return features, mask_ids, mask_weights

    return batches.enumerate().map(with_masks, num_parallel_calls=tf.data.AUTOTUNE)


def causal_lm_dataset(examples, tokenizer, max_length=128, batch_size=32, shuffle=True,
                      seed=None, repeat=False, static_shapes=False):
    """Batches for `GPTCausalLM`: each sentence as `[CLS] tokens [SEP]` (`[SEP]` ends the
    text), inputs without the last token, targets without the first.

    Args:
        examples: sentences (labels unused): `LabeledTexts` or a stream, as for
            `masked_lm_dataset`.
        tokenizer: a `keras_mapping.tokenizers.BertTokenizer`.
        max_length: longest sequence before the shift.
        batch_size: sequences per batch.
        shuffle: shuffle each pass (`LabeledTexts`; a stream comes in its own order).
        seed: shuffle seed.
        repeat: repeat forever.
        static_shapes: pad sequences to a few length buckets, for XLA and TPUs.

    Returns:
        A dataset of `({"token_ids", "padding_mask"}, next_ids, weights)`, weights 1 at real
        target tokens and 0 at padding.

    Example:
    >>> from keras_mapping.data import from_lists
    >>> from keras_mapping.tokenizers import BertTokenizer
    >>> sentences = from_lists(["a fine film"], [0])
    >>> inputs, targets, weights = next(iter(causal_lm_dataset(
    ...     sentences, BertTokenizer.from_preset("minilm_l6"), shuffle=False)))
    >>> inputs["token_ids"].numpy().tolist(), targets.numpy().tolist()
    ([[101, 1037, 2986, 2143]], [[1037, 2986, 2143, 102]])
    """
    batches = _length_grouped_batches(examples, tokenizer, max_length, batch_size, shuffle,
                                      seed, repeat, static_shapes)

    @as_written
    def shift(inputs, labels):
        token_ids, mask = inputs["token_ids"], inputs["padding_mask"]
        return ({"token_ids": token_ids[:, :-1], "padding_mask": mask[:, :-1]},
                token_ids[:, 1:], tf.cast(mask[:, 1:], tf.float32))

    return batches.map(shift, num_parallel_calls=tf.data.AUTOTUNE)


def contrastive_dataset(examples, tokenizer, max_length=128, batch_size=32, shuffle=True,
                        seed=None, repeat=False, static_shapes=False):
    """Batches for `BertSimCSE`: packed sentences, and `range(batch)` as targets (each
    sentence's positive is its own second view).

    Args:
        examples: sentences (labels unused): `LabeledTexts` or a stream, as for
            `masked_lm_dataset`.
        tokenizer: a `keras_mapping.tokenizers.BertTokenizer`.
        max_length: longest packed sequence.
        batch_size: sentences per batch (the negatives of each are the others).
        shuffle: shuffle each pass (`LabeledTexts`; a stream comes in its own order).
        seed: shuffle seed.
        repeat: repeat forever.
        static_shapes: pad sequences to a few length buckets, for XLA and TPUs.

    Returns:
        A dataset of `(inputs, targets, weights)` with all weights 1.
    """
    batches = _length_grouped_batches(examples, tokenizer, max_length, batch_size, shuffle,
                                      seed, repeat, static_shapes)

    @as_written
    def targets(inputs, labels):
        positions = tf.range(tf.shape(labels)[0], dtype=tf.int32)
        return inputs, positions, tf.ones_like(positions, tf.float32)

    return batches.map(targets, num_parallel_calls=tf.data.AUTOTUNE)
