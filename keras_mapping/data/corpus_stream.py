"""tf.data pipelines over a corpus of any size: the sentences (or next-sentence pairs) of its
training or held-out documents, streamed from text files or TFRecord shards.

Nothing here holds the corpus: files are read a few at a time (interleaved, in a fixed
order), training examples are mixed in a shuffle buffer of `SHUFFLE_BUFFER` examples, the
held-out set is at most `HELD_OUT_EXAMPLES` examples and the vocabulary sample at most
`VOCABULARY_SAMPLE_SENTENCES` sentences. Held-out documents are those whose key
(`keras_mapping.data.corpus.document_key`, a fingerprint of their text) falls in the
validation share, so the split does not depend on the order of the files.
"""

import contextlib
import itertools

import numpy as np
import tensorflow as tf

from keras_mapping.data.corpus import (HELD_OUT_BUCKETS, RECORD_CHUNK, CorpusError,
                                       sentence_records)
from keras_mapping.data.corpus_shards import shard_records
from keras_mapping.data.pretraining import neighbour_pairs, with_random_second_sentences
from keras_mapping.tracing import as_written

SHUFFLE_BUFFER = 16_384  # training examples mixed at a time (a few MB)
FILES_READ_AT_ONCE = 8  # files interleaved, so a buffer mixes more than one file's text
HELD_OUT_EXAMPLES = 4_096  # the held-out set is kept in memory (cached) for validation
HELD_OUT_SCAN = 1_000_000  # records searched for held-out documents, over all files
VOCABULARY_SAMPLE_SENTENCES = 200_000  # about 20 MB of text; spread over the files
RECORD_SIGNATURE = {"sentence": tf.TensorSpec([None], tf.string),
                    "document": tf.TensorSpec([None], tf.int64),
                    "position": tf.TensorSpec([None], tf.int64)}


def _text_reader(corpus):
    """`read(path)`: the records of a text file in chunks, read by `sentence_records` in
    Python, which names a bad byte by file and line (tf.data's text readers cannot)."""
    def chunks(path):
        records = sentence_records(path.decode(), corpus.on_bad_bytes)
        try:
            while chunk := list(itertools.islice(records, RECORD_CHUNK)):
                sentences, keys, positions = zip(*chunk)
                yield {"sentence": np.array([s.encode("utf-8") for s in sentences], object),
                       "document": np.array(keys, np.int64),
                       "position": np.array(positions, np.int64)}
        except CorpusError as error:
            corpus.reader_errors.append(error)  # TensorFlow re-raises it as its own error
            raise

    return lambda path: tf.data.Dataset.from_generator(
        chunks, args=(path,), output_signature=RECORD_SIGNATURE)


def corpus_records(corpus, per_file=None, num_workers=1, worker_index=0):
    """The records `{"sentence", "document", "position"}` of a corpus in chunks (1-D
    tensors of up to `RECORD_CHUNK` records), files interleaved `FILES_READ_AT_ONCE` at a
    time in a fixed order.

    Args:
        corpus: `CorpusFiles` from `open_corpus`.
        per_file: applied to each file's chunks (in document order) before interleaving.
        num_workers: workers the files are split between.
        worker_index: this worker's part of them.

    Returns:
        A `tf.data.Dataset`.

    Raises:
        CorpusError: fewer files than workers.
    """
    files = [str(path) for path in corpus.files]
    if len(files) < num_workers:
        raise CorpusError(
            f"{num_workers} workers need at least as many corpus files; the corpus has "
            f"{len(files)}. Split it with `keras-mapping shard-corpus --shards {num_workers}`.")
    # The files are split explicitly, not by tf.distribute's FILE auto-shard policy: that
    # policy looks for TensorFlow's own reader ops at the source, and text files come
    # through Python (`_text_reader`). Splitting the list works for both kinds, under any
    # strategy, and each worker reads only its files.
    paths = tf.data.Dataset.from_tensor_slices(files).shard(num_workers, worker_index)
    read = shard_records if corpus.shards else _text_reader(corpus)
    per_file = per_file or (lambda records: records)
    records = paths.interleave(as_written(lambda path: per_file(read(path))),
                               cycle_length=min(len(files), FILES_READ_AT_ONCE))
    if num_workers > 1:
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.OFF)  # already this worker's part
        records = records.with_options(options)
    return records


def _in_split(validation_share, held_out):
    """`keep(chunk)`: the chunk's records of training (or held-out) documents."""
    threshold = round(validation_share * HELD_OUT_BUCKETS)

    def keep(chunk):
        is_held_out = tf.math.floormod(chunk["document"], HELD_OUT_BUCKETS) < threshold
        kept = is_held_out if held_out else tf.logical_not(is_held_out)
        return {name: tf.boolean_mask(values, kept) for name, values in chunk.items()}

    return keep


def split_records(corpus, *, held_out=False, validation_share=0.0, next_sentence=False,
                  scan=None, num_workers=1, worker_index=0):
    """Chunks of the records of the training (or held-out) documents, or with
    `next_sentence` of their neighbouring sentence pairs `{"first", "second", "document"}`,
    unshuffled.

    Args:
        scan: read at most about this many records of each file (whole chunks).
        Others: as for `training_examples` and `corpus_records`.
    """
    keep = _in_split(validation_share, held_out)

    def per_file(chunks):
        if scan is not None:
            chunks = chunks.take(-(-scan // RECORD_CHUNK))
        chunks = chunks.map(keep)
        return neighbour_pairs(chunks) if next_sentence else chunks

    return corpus_records(corpus, per_file, num_workers, worker_index)


def _sentence_examples(chunks):
    """`((sentence,), 0)` elements from chunks of records."""
    return chunks.map(as_written(lambda chunk: ((chunk["sentence"],), tf.zeros_like(
        chunk["position"], tf.int32)))).unbatch()


def training_examples(corpus, *, validation_share=0.0, next_sentence=False, seed=0,
                      num_workers=1, worker_index=0):
    """One pass over the training documents as examples for `masked_lm_dataset`,
    `causal_lm_dataset` or `contrastive_dataset`, shuffled in a buffer of `SHUFFLE_BUFFER`.

    With `next_sentence`, each pair of neighbouring sentences becomes an example whose
    second sentence is, half of the time, a sentence of another document drawn from the
    same stretch of the shuffle buffer (`with_random_second_sentences`).

    Args:
        corpus: `CorpusFiles` from `open_corpus`.
        validation_share: share of documents held out (by their key, not their place).
        next_sentence: sentence pairs with next-sentence labels instead of sentences.
        seed: seed of the shuffle and of the random second sentences; the same seed gives
            the same examples in the same order.
        num_workers: workers the files are split between (by file).
        worker_index: this worker's part.

    Returns:
        A `tf.data.Dataset` of `((sentence,), 0)` or `((first, second), label)`.

    Example:
    >>> import pathlib, tempfile
    >>> from keras_mapping.data.corpus import open_corpus
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = path.write_text("One.\\nTwo.\\n\\nThree.\\n")
    >>> sorted(texts[0].numpy() for texts, _ in training_examples(open_corpus([path])))
    [b'One.', b'Three.', b'Two.']
    """
    chunks = split_records(corpus, validation_share=validation_share,
                           next_sentence=next_sentence, num_workers=num_workers,
                           worker_index=worker_index)
    if next_sentence:
        pairs = chunks.unbatch().shuffle(SHUFFLE_BUFFER, seed=seed,
                                         reshuffle_each_iteration=True)
        return with_random_second_sentences(pairs, seed)
    return _sentence_examples(chunks).shuffle(SHUFFLE_BUFFER, seed=seed,
                                              reshuffle_each_iteration=True)


def held_out_examples(corpus, *, validation_share, next_sentence=False, seed=0):
    """The held-out documents' examples, at most `HELD_OUT_EXAMPLES`, found among the first
    `HELD_OUT_SCAN` records (spread over the files), in file order: small enough to cache.
    Below those bounds they are the same whatever the order of the files."""
    chunks = split_records(corpus, held_out=True, validation_share=validation_share,
                           next_sentence=next_sentence,
                           scan=max(1, HELD_OUT_SCAN // len(corpus.files)))
    if next_sentence:
        examples = with_random_second_sentences(chunks.unbatch(), seed)
    else:
        examples = _sentence_examples(chunks)
    return examples.take(HELD_OUT_EXAMPLES)


def vocabulary_sample(corpus, *, validation_share=0.0):
    """Sentences of the training documents to learn a vocabulary on: at most
    `VOCABULARY_SAMPLE_SENTENCES`, an equal number from the start of each file.

    Returns:
        A `tf.data.Dataset` of batches of sentences (strings).
    """
    per_file = max(1, VOCABULARY_SAMPLE_SENTENCES // len(corpus.files))
    keep = _in_split(validation_share, held_out=False)
    sentences = corpus_records(
        corpus, lambda chunks: chunks.map(keep).unbatch().take(per_file).batch(RECORD_CHUNK))
    return sentences.map(as_written(lambda chunk: chunk["sentence"]))


def count_up_to(dataset, limit):
    """Elements of `dataset`, counted up to `limit` (it stops reading there)."""
    return int(dataset.take(limit).reduce(np.int64(0), as_written(lambda count, _: count + 1)))


@contextlib.contextmanager
def naming_corpus_errors(corpus):
    """Raises the `CorpusError` a tf.data reader of `corpus` met (a bad byte mid-stream,
    named by file and line) instead of the TensorFlow error that carries it, and names a
    corrupt shard."""
    try:
        yield
    except tf.errors.OpError as error:
        if corpus.reader_errors:
            raise corpus.reader_errors[0] from None
        if corpus.shards and isinstance(error, tf.errors.DataLossError):
            raise CorpusError(f"A TFRecord shard of the corpus ({corpus.describe()}) is "
                              f"corrupt: {error.message}") from None
        raise


def check_training_data(corpus, *, validation_share=0.0, next_sentence=False, batch_size=1):
    """Refuses a corpus without text, without one batch of training examples, or (for
    next-sentence prediction) without two training documents, reading only as far as that
    takes: before a run writes anything.

    Raises:
        CorpusError: saying which, and what to change.
    """
    if not count_up_to(corpus_records(corpus).unbatch(), 1):
        raise CorpusError(f"The corpus ({corpus.describe()}) holds no text.")
    held_out = (f" once {validation_share:.0%} of documents are held out (--validation-share)"
                if validation_share else "")
    if next_sentence:
        starts = split_records(corpus, validation_share=validation_share).unbatch().filter(
            lambda record: record["position"] == 0)
        documents = count_up_to(starts, 2)
        if documents < 2:
            raise CorpusError(
                f"Next-sentence prediction needs at least 2 documents (random second "
                f"sentences come from another document); the corpus holds {documents}"
                f"{held_out}. Separate documents with a blank line or put them in separate "
                "files.")
    examples = count_up_to(split_records(corpus, validation_share=validation_share,
                                         next_sentence=next_sentence).unbatch(), batch_size)
    if next_sentence and not examples:
        raise CorpusError("Next-sentence prediction needs documents of at least 2 sentences "
                          "(one a line); every document here has one.")
    if examples < batch_size:
        raise CorpusError(
            f"The corpus gives {examples} training examples ("
            f"{'sentence pairs' if next_sentence else 'sentences'}){held_out}, fewer than one "
            f"batch of {batch_size}; add text or lower --batch-size.")
