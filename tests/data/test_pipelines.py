import numpy as np
import pytest

from keras_mapping.data import classification_dataset, from_lists
from keras_mapping.data.pipelines import length_buckets
from keras_mapping.tokenizers import BertTokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer.from_preset("minilm_l6")


def sentences(count, seed=0):
    rng = np.random.default_rng(seed)
    words = ["good", "bad", "film", "plot", "charming", "dull", "the", "a", "very"]
    return [" ".join(rng.choice(words, rng.integers(1, 40))) for _ in range(count)]


def test_packs_ids_masks_and_pads_to_the_batch(tokenizer):
    examples = from_lists(["a fine film", "dull", ""], [1, 0, 1])
    inputs, labels = next(iter(classification_dataset(examples, tokenizer, buckets=None)))
    assert inputs["token_ids"].numpy().tolist() == [
        [101, 1037, 2986, 2143, 102], [101, 10634, 102, 0, 0], [101, 102, 0, 0, 0]]
    assert inputs["segment_ids"].numpy().sum() == 0
    assert inputs["padding_mask"].numpy().tolist() == [
        [True] * 5, [True] * 3 + [False] * 2, [True] * 2 + [False] * 3]
    assert labels.numpy().tolist() == [1, 0, 1]


def test_pairs_get_segment_ids_and_truncation(tokenizer):
    examples = from_lists(["the film is good"], [0], text_pairs=["very very dull plot"])
    inputs, _ = next(iter(classification_dataset(examples, tokenizer, max_length=8,
                                                 buckets=None)))
    ids = inputs["token_ids"].numpy()[0].tolist()
    assert len(ids) == 8 and ids[0] == 101 and ids.count(102) == 2
    assert inputs["segment_ids"].numpy()[0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_batches_pad_to_length_buckets_and_never_beyond_max_length(tokenizer):
    examples = from_lists(sentences(200), [0] * 200)
    boundaries = length_buckets(48, (8, 16, 32))
    assert boundaries == [8, 16, 32, 48]
    lengths = set()
    for inputs, _ in classification_dataset(examples, tokenizer, max_length=48, batch_size=16,
                                            buckets=(8, 16, 32)):
        length = inputs["token_ids"].shape[1]
        lengths.add(length)
        mask = inputs["padding_mask"].numpy()
        assert mask.sum(axis=1).max() <= length
        real_longest = mask.sum(axis=1).max()
        assert length == min(b for b in boundaries if b >= real_longest)
    assert lengths <= set(boundaries)


def test_group_by_length_fills_batches_from_one_bucket(tokenizer):
    examples = from_lists(sentences(300, seed=2), [0] * 300)
    dataset = classification_dataset(examples, tokenizer, max_length=48, batch_size=16,
                                      buckets=(8, 16, 32), group_by_length=True, shuffle=True,
                                      seed=3)
    seen = 0
    for inputs, _ in dataset:
        real = inputs["padding_mask"].numpy().sum(axis=1)
        boundaries = [0, 8, 16, 32, 48]
        buckets = {next(i for i, b in enumerate(boundaries) if b >= r) for r in real}
        assert len(buckets) == 1, real
        seen += len(real)
    assert seen == 300  # nothing dropped, remainders included


def test_seeded_shuffle_is_reproducible_and_reshuffles(tokenizer):
    examples = from_lists(sentences(64, seed=4), list(range(64)))

    def order(dataset, epochs=2):
        return [labels.numpy().tolist() for labels in
                (batch[1] for batch in dataset.take(epochs * 4))]

    make = lambda: classification_dataset(examples, tokenizer, batch_size=16, shuffle=True,
                                          seed=9, repeat=True, deterministic=True)
    first, second = order(make()), order(make())
    assert first == second
    assert sorted(sum(first[:4], [])) == list(range(64))
    assert sum(first[:4], []) != sum(first[4:], [])  # a new order every epoch


def test_rejects_bad_batch_size(tokenizer):
    with pytest.raises(ValueError, match="batch_size"):
        classification_dataset(from_lists(["x"], [0]), tokenizer, batch_size=0)


def test_a_stream_of_examples_is_batched_as_given_and_never_cached(tokenizer):
    import tensorflow as tf

    texts = sentences(50, seed=2)
    labels = list(range(50))
    in_memory = classification_dataset(from_lists(texts, [0] * 50), tokenizer, batch_size=8,
                                       group_by_length=True)
    stream = tf.data.Dataset.from_tensor_slices(((tf.constant(texts),), tf.constant(labels)))
    streamed = classification_dataset(stream, tokenizer, batch_size=8, group_by_length=True,
                                      shuffle=False)
    assert ([ids.tolist() for ids in (b[0]["token_ids"].numpy() for b in in_memory)]
            == [ids.tolist() for ids in (b[0]["token_ids"].numpy() for b in streamed)])
    with pytest.raises(ValueError, match="streamed: shuffle it before"):
        classification_dataset(stream, tokenizer, shuffle=True)


def test_tokenizers_share_a_traced_graph_only_when_they_tokenize_alike(tokenizer):
    """Pipelines reuse the traced tokenizer of an equal tokenizer (same vocabulary and
    settings), never one that would give other ids."""
    from keras_mapping.data.pipelines import tokenize_texts

    examples = from_lists(["Hello Café"], [0])
    twin = BertTokenizer.from_preset("minilm_l6")
    cased = BertTokenizer.from_preset("minilm_l6", lowercase=False)
    smaller = BertTokenizer(vocabulary=tokenizer.vocabulary[:2000])
    ids = {name: tokenize_texts(examples, each, 16).segments[0].to_list()
           for name, each in (("first", tokenizer), ("twin", twin), ("cased", cased),
                              ("smaller", smaller))}
    assert ids["first"] == ids["twin"] == [[7592, 7668]]
    assert ids["cased"] != ids["first"] and ids["smaller"] != ids["first"]
    assert ids["cased"] == [tokenizer_ids(cased, "Hello Café")]
    assert ids["smaller"] == [tokenizer_ids(smaller, "Hello Café")]


def tokenizer_ids(tokenizer, text):
    return tokenizer.tokenize(text).numpy().tolist()


def test_texts_tokenized_in_chunks_on_threads_keep_their_order(tokenizer, monkeypatch):
    """Several chunks, tokenized on a thread each, come back in the texts' order: the ids of
    tokenizing every text at once, pairs included, each row cut at `max_length`."""
    import tensorflow as tf

    from keras_mapping.data import pipelines

    monkeypatch.setattr(pipelines, "TOKENIZE_CHUNK", 3)
    texts, pairs = sentences(11, seed=3), sentences(11, seed=4)
    tokenized = pipelines.tokenize_texts(from_lists(texts, [0] * 11, text_pairs=pairs),
                                         tokenizer, 12)
    for segment, column in zip(tokenized.segments, (texts, pairs)):
        assert segment.to_list() == tokenizer.tokenize(tf.constant(column))[:, :12].to_list()
    assert pipelines.tokenize_texts(from_lists([], []), tokenizer, 12).segments[0].shape[0] == 0
