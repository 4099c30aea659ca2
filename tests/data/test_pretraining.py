import numpy as np
import pytest
import tensorflow as tf

from keras_mapping.data import (from_lists, masked_lm_dataset, neighbour_pairs,
                                with_random_second_sentences)
from keras_mapping.data.corpus import document_key
from keras_mapping.data.pretraining import IS_NEXT, NOT_NEXT
from keras_mapping.tokenizers import BertTokenizer

WORDS = ("film story actor scene music plot ending camera script drama comedy hero "
         "village river mountain garden winter summer letter window").split()


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer.from_preset("minilm_l6")


def test_masking_rates_and_specials(tokenizer):
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, 40)) for _ in range(600)]
    tf.random.set_seed(0)
    dataset = masked_lm_dataset(from_lists(texts, [0] * len(texts)), tokenizer,
                                max_length=64, batch_size=50, seed=0)
    specials = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id}
    original = {tuple(ids) for ids in tokenizer(texts).to_list()}
    selectable = selected = masked = kept = 0
    for inputs, mask_ids, mask_weights in dataset:
        token_ids = inputs["token_ids"].numpy()
        positions = inputs["mask_positions"].numpy()
        weights = mask_weights.numpy() > 0
        ids = mask_ids.numpy()
        rows = np.repeat(np.arange(len(positions))[:, None], positions.shape[1], axis=1)
        at_positions = token_ids[rows, positions]
        selectable += int(inputs["padding_mask"].numpy().sum()) - 2 * len(token_ids)
        selected += int(weights.sum())
        masked += int((at_positions[weights] == tokenizer.mask_token_id).sum())
        kept += int((at_positions[weights] == ids[weights]).sum())
        # Every label is a real, non-special token of the unmasked text.
        assert not set(ids[weights].tolist()) & specials
        unmasked = token_ids.copy()
        unmasked[rows[weights], positions[weights]] = ids[weights]
        for row, length in zip(unmasked, inputs["padding_mask"].numpy().sum(1)):
            assert row[0] == tokenizer.cls_token_id and row[length - 1] == tokenizer.sep_token_id
            assert tuple(row[1:length - 1]) in original
    assert selected / selectable == pytest.approx(0.15, abs=0.01)
    assert masked / selected == pytest.approx(0.8, abs=0.03)
    # Unchanged: the 10% kept plus random draws that hit the same token (negligible).
    assert kept / selected == pytest.approx(0.1, abs=0.02)


def test_masks_are_dynamic(tokenizer):
    texts = from_lists([" ".join(WORDS)] * 8, [0] * 8)
    dataset = masked_lm_dataset(texts, tokenizer, batch_size=8, shuffle=False, repeat=True)
    batches = iter(dataset)
    first = next(batches)[0]["mask_positions"].numpy()
    second = next(batches)[0]["mask_positions"].numpy()
    assert not np.array_equal(first, second)


def record_chunks(documents, chunk=7):
    """Records of `documents` (`{"sentence", "document", "position"}`) in chunks of `chunk`,
    as a corpus file streams them: documents run on from one chunk into the next."""
    rows = [(sentence, document_key(document), position) for document in documents
            for position, sentence in enumerate(document)]
    columns = [list(column) for column in zip(*rows)]
    return tf.data.Dataset.from_tensor_slices({
        "sentence": tf.constant(columns[0]), "document": tf.constant(columns[1], tf.int64),
        "position": tf.constant(columns[2], tf.int64)}).batch(chunk)


def next_sentence_examples(documents, seed):
    pairs = neighbour_pairs(record_chunks(documents)).unbatch()
    return [(first.numpy().decode(), second.numpy().decode(), int(label))
            for (first, second), label in with_random_second_sentences(pairs, seed=seed)]


def test_next_sentence_pairs():
    documents = [[f"doc{d} sentence{s} ." for s in range(6)] for d in range(80)]
    examples = next_sentence_examples(documents, seed=3)
    assert len(examples) == 80 * 5  # every pair of neighbours, across chunk boundaries
    labels = np.array([label for *_, label in examples])
    assert 0.4 < (labels == NOT_NEXT).mean() < 0.6
    for first, second, label in examples:
        doc, sentence = first.split()[:2]
        if label == IS_NEXT:
            assert second == f"{doc} sentence{int(sentence[8:]) + 1} ."
        else:
            assert not second.startswith(doc + " ")
    assert next_sentence_examples(documents, seed=3) == examples
    assert next_sentence_examples(documents, seed=4) != examples


def test_a_lone_document_gets_no_random_second_sentences():
    examples = next_sentence_examples([["One.", "Two.", "Three."]], seed=0)
    assert examples == [("One.", "Two.", IS_NEXT), ("Two.", "Three.", IS_NEXT)]


def test_pretraining_batches_for_next_sentence(tokenizer):
    documents = [[f"{WORDS[d]} {WORDS[s]} ." for s in range(4)] for d in range(6)]
    pairs = with_random_second_sentences(neighbour_pairs(record_chunks(documents)).unbatch())
    inputs, labels, weights = next(iter(masked_lm_dataset(
        pairs, tokenizer, batch_size=4, next_sentence=True, seed=0)))
    assert sorted(labels) == sorted(weights) == ["mlm", "nsp"]
    assert labels["mlm"].shape == inputs["mask_positions"].shape == weights["mlm"].shape
    assert set(np.unique(inputs["segment_ids"].numpy())) == {0, 1}


def test_whole_word_masking_predicts_every_piece_of_a_chosen_word(tokenizer):
    texts = ["snowboarding unbelievably hyperventilating photosynthesis tarantula "
             "marshmallows kaleidoscope"] * 64
    tf.random.set_seed(1)
    inputs, mask_ids, mask_weights = next(iter(masked_lm_dataset(
        from_lists(texts, [0] * 64), tokenizer, batch_size=64, mask_rate=0.3,
        whole_word=True, seed=0)))
    original = np.array(tokenizer(texts[:1]).to_list()[0])
    vocabulary = tokenizer.get_vocabulary()
    starts = [0] + [i for i in range(1, len(original))
                    if not vocabulary[original[i]].startswith("##")]
    words = [set(range(a + 1, b + 1)) for a, b in zip(starts, starts[1:] + [len(original)])]
    assert any(len(word) > 1 for word in words)  # the text really has multi-piece words
    chosen_counts = []
    for positions, ids, weights in zip(inputs["mask_positions"].numpy(), mask_ids.numpy(),
                                       mask_weights.numpy()):
        chosen = set(positions[weights > 0].tolist())
        # Labels are the original tokens (position 0 is [CLS] in the packed row).
        np.testing.assert_array_equal(ids[weights > 0], original[positions[weights > 0] - 1])
        for word in words:
            assert not chosen & word or word <= chosen, (word, chosen)
        chosen_counts.append(sum(word <= chosen for word in words))
    # tensorflow-text rounds each row's number of selections up: ceil(0.3 * 7 words) = 3.
    assert set(chosen_counts) <= {2, 3} and np.mean(chosen_counts) > 2


@pytest.mark.parametrize("whole_word", [False, True])
def test_the_same_seed_gives_the_same_masks_in_a_rebuilt_pipeline(tokenizer, whole_word):
    texts = from_lists([" ".join(np.random.default_rng(i).choice(WORDS, 12)) for i in range(32)],
                       [0] * 32)

    def first_batches(seed):
        dataset = masked_lm_dataset(texts, tokenizer, batch_size=8, mask_rate=0.3, seed=seed,
                                    whole_word=whole_word, repeat=True)
        return [batch[0]["token_ids"].numpy() for batch in dataset.take(6)]

    for a, b in zip(first_batches(3), first_batches(3)):
        np.testing.assert_array_equal(a, b)
    assert any(a.shape != b.shape or (a != b).any()
               for a, b in zip(first_batches(3), first_batches(4)))


@pytest.mark.parametrize("whole_word", [False, True])
def test_static_shapes_use_length_buckets_and_fixed_prediction_slots(tokenizer, whole_word):
    from keras_mapping.data.pipelines import DEFAULT_BUCKETS
    from keras_mapping.data.pretraining import prediction_slots

    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(WORDS, rng.integers(1, 60))) for _ in range(300)]
    dataset = masked_lm_dataset(from_lists(texts, [0] * len(texts)), tokenizer,
                                max_length=80, batch_size=16, seed=0,
                                whole_word=whole_word, static_shapes=True)
    slots = prediction_slots(80, 0.15, whole_word)
    lengths, predicted = set(), 0
    for inputs, mask_ids, mask_weights in dataset:
        lengths.add(inputs["token_ids"].shape[1])
        assert inputs["mask_positions"].shape[1] == mask_ids.shape[1] == slots
        predicted += int(mask_weights.numpy().sum())
    assert lengths <= {*DEFAULT_BUCKETS, 80} and len(lengths) > 1
    # As many predictions as without fixed shapes (every word of WORDS is one piece, so the
    # count is fixed): padding adds slots, never drops any.
    unpadded = masked_lm_dataset(from_lists(texts, [0] * len(texts)), tokenizer,
                                 max_length=80, batch_size=16, seed=0, whole_word=whole_word)
    assert predicted == sum(int(weights.numpy().sum()) for _, _, weights in unpadded)


def test_prediction_slots_overflow_is_an_error_not_a_truncation():
    from keras_mapping.data.pretraining import mask_tokens

    ids = tf.constant([[101] + list(range(2000, 2010)) + [102]])
    with pytest.raises(tf.errors.InvalidArgumentError, match="prediction slots"):
        mask_tokens(ids, ids > 102, tf.constant([1, 2]), mask_rate=0.5, mask_token_id=103,
                    vocabulary_size=30522, slots=3)


@pytest.mark.parametrize("slots", [None, 9])
def test_predictions_are_packed_as_the_ragged_mask_packs_them(slots):
    from keras_mapping.data.pretraining import _left_packing

    rng = np.random.default_rng(3)
    for batch, length in ((5, 9), (1, 1), (0, 4), (7, 30)):
        values = tf.constant(rng.integers(1, 1000, (batch, length)), tf.int32)
        selected = tf.constant(rng.random((batch, length)) < rng.random((batch, 1)) * 0.4)
        if batch:
            selected = tf.tensor_scatter_nd_update(selected, [[0, 0]], [False])
        expected = tf.ragged.boolean_mask(values, selected).to_tensor().numpy()
        if slots and expected.shape[1] > slots:
            with pytest.raises(tf.errors.InvalidArgumentError, match="prediction slots"):
                _left_packing(selected, slots)(values)
            continue
        expected = np.pad(expected, [(0, 0), (0, (slots or max(expected.shape[1], 1))
                                              - expected.shape[1])])
        packed = _left_packing(selected, slots)(values).numpy()
        assert packed.shape == expected.shape
        np.testing.assert_array_equal(packed, expected)
