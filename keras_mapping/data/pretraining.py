"""tf.data pipelines for BERT pretraining: next-sentence pairs and dynamic masking.

Masks are drawn anew each time a batch is made (dynamic masking, as in RoBERTa), inside
tf.data, by keras-hub's `MaskedLMMaskGenerator` (BERT's 80/10/10 rule; special tokens are
never selected). Batches reuse the classification pipeline: exact-length batches, packing,
caching of the token ids.
"""

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text
from keras_hub.layers import MaskedLMMaskGenerator

from keras_mapping.data.corpus import CorpusError
from keras_mapping.data.pipelines import classification_dataset
from keras_mapping.data.readers import LabeledTexts

IS_NEXT, NOT_NEXT = 0, 1  # BertPretrainer's next-sentence labels, as in BERT


def next_sentence_pairs(corpus, seed=0, random_rate=0.5):
    """Sentence pairs for next-sentence prediction, one per pair of neighbouring sentences.

    With probability `random_rate` the second sentence is replaced by a random sentence of
    another document (label `NOT_NEXT`), else it is the true next sentence (`IS_NEXT`).

    Args:
        corpus: a `keras_mapping.data.corpus.Corpus`.
        seed: seed of the random choices.
        random_rate: share of random second sentences.

    Returns:
        `LabeledTexts` with `text_pairs`, labels `IS_NEXT` (0) or `NOT_NEXT` (1).

    Raises:
        CorpusError: fewer than two documents (no "other document" to draw from), or no
            document with two sentences.

    Example:
    >>> from keras_mapping.data.corpus import Corpus
    >>> corpus = Corpus((("A.", "B.", "C."), ("X.", "Y.")), ("one", "two"))
    >>> pairs = next_sentence_pairs(corpus, seed=1)
    >>> len(pairs), sorted(set(pairs.labels)) <= [0, 1]
    (3, True)
    """
    documents = corpus.documents
    if len(documents) < 2:
        raise CorpusError(
            f"Next-sentence prediction needs at least 2 documents (random second sentences "
            f"come from another document); the corpus holds {len(documents)}. Separate "
            "documents with a blank line or put them in separate files.")
    if not any(len(document) >= 2 for document in documents):
        raise CorpusError("Next-sentence prediction needs documents of at least 2 sentences "
                          "(one a line); every document here has one.")
    rng = np.random.default_rng(seed)
    firsts, seconds, labels = [], [], []
    for index, document in enumerate(documents):
        for position in range(len(document) - 1):
            firsts.append(document[position])
            if rng.random() < random_rate:
                other = int(rng.integers(len(documents) - 1))
                other += other >= index
                seconds.append(documents[other][int(rng.integers(len(documents[other])))])
                labels.append(NOT_NEXT)
            else:
                seconds.append(document[position + 1])
                labels.append(IS_NEXT)
    return LabeledTexts(firsts, labels, ["is_next", "not_next"], "next-sentence pairs",
                        text_pairs=seconds)


def mask_generator(tokenizer, mask_rate=0.15, mask_token_rate=0.8, random_token_rate=0.1):
    """keras-hub's `MaskedLMMaskGenerator` for a `BertTokenizer`: `[CLS]`, `[SEP]` and
    `[PAD]` are never selected; selections are ragged, so each batch predicts only as many
    positions as its fullest row needs."""
    return MaskedLMMaskGenerator(
        vocabulary_size=tokenizer.vocabulary_size(),
        mask_selection_rate=mask_rate,
        mask_token_id=tokenizer.mask_token_id,
        unselectable_token_ids=[tokenizer.cls_token_id, tokenizer.sep_token_id,
                                tokenizer.pad_token_id],
        mask_token_rate=mask_token_rate,
        random_token_rate=random_token_rate,
    )


def _dense(ragged, dtype):
    values = tf.cast(ragged, dtype).to_tensor()
    # A batch with nothing selectable keeps one weightless prediction slot.
    missing = tf.maximum(1 - tf.shape(values)[1], 0)
    return tf.pad(values, [[0, 0], [0, missing]])


def _masking(masker):
    def mask(inputs):
        masked = masker(inputs["token_ids"])
        features = dict(inputs, token_ids=tf.cast(masked["token_ids"], tf.int32),
                        mask_positions=_dense(masked["mask_positions"], tf.int32))
        return (features, _dense(masked["mask_ids"], tf.int32),
                _dense(masked["mask_weights"], tf.float32))

    return mask


def _words(token_ids, padding_mask, continuation):
    """`[batch, (words), (pieces)]` view of packed ids: a piece whose token starts with "##"
    belongs to the word before it."""
    lengths = tf.reduce_sum(tf.cast(padding_mask, tf.int64), axis=1)
    pieces = tf.RaggedTensor.from_tensor(token_ids, lengths=lengths)
    flat = pieces.flat_values
    starts = tf.logical_not(tf.gather(continuation, flat))
    # A row's first piece always opens a word (it is [CLS] in packed input anyway).
    row_firsts = tf.expand_dims(pieces.row_starts(), 1)
    starts = tf.tensor_scatter_nd_update(starts, row_firsts,
                                         tf.ones_like(row_firsts[:, 0], tf.bool))
    words = tf.RaggedTensor.from_value_rowids(flat, tf.cumsum(tf.cast(starts, tf.int64)) - 1)
    row_of_word = tf.gather(pieces.value_rowids(), tf.where(starts)[:, 0])
    return tf.RaggedTensor.from_value_rowids(words, row_of_word,
                                             nrows=tf.shape(token_ids, tf.int64)[0])


def _whole_word_masking(tokenizer, mask_rate, mask_token_rate=0.8, random_token_rate=0.1):
    continuation = tf.constant([token.startswith("##") for token in tokenizer.get_vocabulary()])
    selector = tf_text.RandomItemSelector(
        max_selections_per_batch=2**31 - 1, selection_rate=mask_rate,
        unselectable_ids=[tokenizer.cls_token_id, tokenizer.sep_token_id,
                          tokenizer.pad_token_id])
    chooser = tf_text.MaskValuesChooser(tokenizer.vocabulary_size(), tokenizer.mask_token_id,
                                        mask_token_rate=mask_token_rate,
                                        random_token_rate=random_token_rate)

    def mask(inputs):
        token_ids, padding_mask = inputs["token_ids"], inputs["padding_mask"]
        masked, positions, ids = tf_text.mask_language_model(
            _words(token_ids, padding_mask, continuation), selector, chooser)
        if masked.shape.rank == 3:
            masked = masked.merge_dims(1, 2)
        masked = masked.to_tensor(shape=tf.shape(token_ids))
        features = dict(inputs, token_ids=tf.cast(masked, tf.int32),
                        mask_positions=_dense(positions, tf.int32))
        return (features, _dense(ids, tf.int32),
                _dense(tf.ones_like(positions, tf.float32), tf.float32))

    return mask


def masked_lm_dataset(examples, tokenizer, max_length=128, batch_size=32, mask_rate=0.15,
                      whole_word=False, next_sentence=False, shuffle=True, seed=None,
                      repeat=False):
    """Batches for `BertMaskedLM` (or, with `next_sentence`, `BertPretrainer`).

    Args:
        examples: `LabeledTexts`: single sentences (labels unused), or sentence pairs from
            `next_sentence_pairs` when `next_sentence` is set.
        tokenizer: a `keras_mapping.tokenizers.BertTokenizer`.
        max_length: longest packed sequence.
        batch_size: sequences per batch.
        mask_rate: share of (non-special) tokens selected for prediction; with `whole_word`,
            the share of words.
        whole_word: select whole words: every piece of a chosen word is predicted
            (tensorflow-text's masking over `[batch, (words), (pieces)]`).
        next_sentence: also yield the next-sentence labels, for `BertPretrainer`.
        shuffle: shuffle each pass.
        seed: shuffle seed (masks follow TensorFlow's global seed).
        repeat: repeat forever.

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
    batches = classification_dataset(examples, tokenizer, max_length=max_length,
                                     batch_size=batch_size, shuffle=shuffle, seed=seed,
                                     buckets=None, group_by_length=True, repeat=repeat)
    mask = (_whole_word_masking(tokenizer, mask_rate) if whole_word
            else _masking(mask_generator(tokenizer, mask_rate)))

    def with_masks(inputs, labels):
        features, mask_ids, mask_weights = mask(inputs)
        if next_sentence:
            return (features, {"mlm": mask_ids, "nsp": labels},
                    {"mlm": mask_weights, "nsp": tf.ones_like(labels, tf.float32)})
        return features, mask_ids, mask_weights

    return batches.map(with_masks, num_parallel_calls=tf.data.AUTOTUNE)


def causal_lm_dataset(examples, tokenizer, max_length=128, batch_size=32, shuffle=True,
                      seed=None, repeat=False):
    """Batches for `GPTCausalLM`: each sentence as `[CLS] tokens [SEP]` (`[SEP]` ends the
    text), inputs without the last token, targets without the first.

    Args:
        examples: `LabeledTexts` of sentences (labels unused).
        tokenizer: a `keras_mapping.tokenizers.BertTokenizer`.
        max_length: longest sequence before the shift.
        batch_size: sequences per batch.
        shuffle: shuffle each pass.
        seed: shuffle seed.
        repeat: repeat forever.

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
    batches = classification_dataset(examples, tokenizer, max_length=max_length,
                                     batch_size=batch_size, shuffle=shuffle, seed=seed,
                                     buckets=None, group_by_length=True, repeat=repeat)

    def shift(inputs, labels):
        token_ids, mask = inputs["token_ids"], inputs["padding_mask"]
        return ({"token_ids": token_ids[:, :-1], "padding_mask": mask[:, :-1]},
                token_ids[:, 1:], tf.cast(mask[:, 1:], tf.float32))

    return batches.map(shift, num_parallel_calls=tf.data.AUTOTUNE)


def contrastive_dataset(examples, tokenizer, max_length=128, batch_size=32, shuffle=True,
                        seed=None, repeat=False):
    """Batches for `BertSimCSE`: packed sentences, and `range(batch)` as targets (each
    sentence's positive is its own second view).

    Args:
        examples: `LabeledTexts` of sentences (labels unused).
        tokenizer: a `keras_mapping.tokenizers.BertTokenizer`.
        max_length: longest packed sequence.
        batch_size: sentences per batch (the negatives of each are the others).
        shuffle: shuffle each pass.
        seed: shuffle seed.
        repeat: repeat forever.

    Returns:
        A dataset of `(inputs, targets, weights)` with all weights 1.
    """
    batches = classification_dataset(examples, tokenizer, max_length=max_length,
                                     batch_size=batch_size, shuffle=shuffle, seed=seed,
                                     buckets=None, group_by_length=True, repeat=repeat)

    def targets(inputs, labels):
        positions = tf.range(tf.shape(labels)[0], dtype=tf.int32)
        return inputs, positions, tf.ones_like(positions, tf.float32)

    return batches.map(targets, num_parallel_calls=tf.data.AUTOTUNE)
