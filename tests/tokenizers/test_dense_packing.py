"""`pack_dense`, the packing `BertPacker` runs, against rows built in Python with
tensorflow-text's own trimmers deciding what a pair keeps; and through TFLite."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text

from keras_mapping.export.tflite import TFLiteWordPieces, tflite_interpreter
from keras_mapping.tokenizers import BertTokenizer
from keras_mapping.tokenizers.dense_packing import TRUNCATIONS, pack_dense
from keras_mapping.tokenizers.packer import BertPacker

CLS, SEP, PAD = 101, 102, 5  # a non-zero [PAD] shows padding never comes from a default 0


def ragged(rows):
    return tf.ragged.constant(rows, dtype=tf.int32, ragged_rank=1, inner_shape=())


def random_rows(rng, lengths):
    return ragged([rng.integers(1000, 30000, size=length).tolist() for length in lengths])


def kept_lengths(segments, room, truncate):
    """Per row, how many ids each segment keeps: tensorflow-text's trimmers for round robin
    and waterfall. longest_first is round robin except for who gets the odd id of a room
    that both segments compete for: round robin gives it to A, longest_first to the longer
    segment (B on a tie)."""
    trimmer = tf_text.WaterfallTrimmer if truncate == "waterfall" else tf_text.RoundRobinTrimmer
    kept = [t.row_lengths().numpy() for t in trimmer(room).trim(list(segments))]
    if truncate == "longest_first" and len(segments) == 2:
        lengths = [segment.row_lengths().numpy() for segment in segments]
        moves = (kept[0] + kept[1] == room) & (kept[0] == kept[1] + 1) & (
            lengths[0] <= lengths[1])
        kept = [kept[0] - moves, kept[1] + moves]
    return kept


def reference_rows(segments, max_length, pad, truncate, pad_to_longest):
    kept = kept_lengths(segments, max_length - 1 - len(segments), truncate)
    rows = []
    for index in range(int(segments[0].nrows())):
        row, type_ids = [CLS], [0]
        for number, (segment, keep) in enumerate(zip(segments, kept)):
            ids = segment[index].numpy().tolist()[:keep[index]] + [SEP]
            row, type_ids = row + ids, type_ids + [number] * len(ids)
        rows.append((row, type_ids))
    width = max((len(row) for row, _ in rows), default=0) if pad_to_longest else max_length
    expected = {"token_ids": np.full((len(rows), width), pad),
                "segment_ids": np.zeros((len(rows), width), int),
                "padding_mask": np.zeros((len(rows), width), bool)}
    for index, (row, type_ids) in enumerate(rows):
        expected["token_ids"][index, :len(row)] = row
        expected["segment_ids"][index, :len(row)] = type_ids
        expected["padding_mask"][index, :len(row)] = True
    return expected


def assert_packs_like_the_reference(segments, max_length, truncate="longest_first",
                                    pad_to_longest=True, pad=PAD):
    dense = pack_dense(segments, max_length, CLS, SEP, pad, truncate, pad_to_longest)
    expected = reference_rows(segments, max_length, pad, truncate, pad_to_longest)
    assert sorted(dense) == sorted(expected)
    for name, value in expected.items():
        assert dense[name].dtype == (tf.bool if name == "padding_mask" else tf.int32), name
        assert dense[name].shape == value.shape, (name, dense[name].shape, value.shape)
        np.testing.assert_array_equal(dense[name].numpy(), value, err_msg=f"{name}, {truncate}")


@pytest.mark.parametrize("truncate", TRUNCATIONS)
@pytest.mark.parametrize("max_length", [3, 4, 5, 6, 7, 8, 11, 16, 30])
def test_pair_matches_the_reference_for_every_pair_of_lengths(max_length, truncate):
    # One row per (len A, len B) up to 13: empty segments, ties, one long segment, and both
    # parities of the room, all in one batch.
    rng = np.random.default_rng(max_length)
    first_lengths, second_lengths = zip(*itertools.product(range(14), repeat=2))
    segments = (random_rows(rng, first_lengths), random_rows(rng, second_lengths))
    assert_packs_like_the_reference(segments, max_length, truncate)
    assert_packs_like_the_reference(segments, max_length, truncate, pad_to_longest=False)


@pytest.mark.parametrize("max_length", [2, 3, 5, 8, 16, 40])
def test_single_segment_matches_the_reference_for_every_length(max_length):
    rng = np.random.default_rng(max_length)
    segment = (random_rows(rng, range(30)),)
    assert_packs_like_the_reference(segment, max_length)
    assert_packs_like_the_reference(segment, max_length, pad_to_longest=False)


@pytest.mark.parametrize("seed", range(12))
def test_random_batches_match_the_reference(seed):
    rng = np.random.default_rng(seed)
    batch = int(rng.integers(1, 9))

    def lengths():
        # Mostly short rows, some long ones, so that a batch often has one long segment.
        short = rng.integers(0, 6, size=batch)
        return np.where(rng.random(batch) < 0.3, rng.integers(6, 60, size=batch), short)

    for max_length in (5, 8, 16, 128):
        first = random_rows(rng, lengths())
        assert_packs_like_the_reference((first,), max_length)
        truncate = TRUNCATIONS[seed % len(TRUNCATIONS)]
        assert_packs_like_the_reference((first, random_rows(rng, lengths())), max_length,
                                        truncate)


def test_all_empty_segments_and_an_empty_batch():
    assert_packs_like_the_reference((ragged([[], []]), ragged([[], []])), 8)
    assert_packs_like_the_reference((ragged([[], [], []]),), 8)
    nothing = tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int32), tf.zeros([0], tf.int64))
    assert_packs_like_the_reference((nothing, nothing), 8)
    assert_packs_like_the_reference((nothing,), 8)
    assert_packs_like_the_reference((nothing,), 8, pad_to_longest=False)


def test_no_max_length_cuts_nothing():
    rng = np.random.default_rng(0)
    segments = (random_rows(rng, [0, 3, 40]), random_rows(rng, [7, 0, 50]))
    outputs = pack_dense(segments, None, CLS, SEP, PAD)
    assert outputs["token_ids"].shape == (3, 93)
    np.testing.assert_array_equal(outputs["padding_mask"].numpy().sum(1), [10, 6, 93])


def test_a_fixed_width_is_static_in_the_graph():
    spec = tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1)
    traced = tf.function(lambda a, b: pack_dense((a, b), 16, CLS, SEP, PAD,
                                                 pad_to_longest=False))
    outputs = traced.get_concrete_function(spec, spec).structured_outputs
    assert all(value.shape.as_list() == [None, 16] for value in outputs.values())


MAX_LENGTH = 16
TEXTS = ["The movie was great!", "", "An unflinchingly bleak and desperate story about a "
         "family, told with wonderful patience.", "ok", "Short one."]
PAIRS = ["Was it good?", "Nothing to say here at all, really.", "", "Yes, wonderfully "
         "so, from start to finish, every single minute.", "Short two."]


class PairPacking(TFLiteWordPieces):
    """Strings to BERT inputs with the TFLite export's own tokenizer ops."""

    def pack(self, *texts):
        outputs = pack_dense(tuple(map(self.pieces, texts)), MAX_LENGTH, *self.special_ids)
        # As int32, the type the model inputs of an app would be fed with.
        outputs["padding_mask"] = tf.cast(outputs["padding_mask"], tf.int32)
        return outputs

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text"),
                                  tf.TensorSpec([None], tf.string, name="text_pair")])
    def pair(self, text, text_pair):
        return self.pack(text, text_pair)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def single(self, text):
        return self.pack(text)


def test_tflite_round_trip_with_tokenizer_matches_tensorflow_and_bert_packer(tmp_path):
    module = PairPacking(BertTokenizer.from_preset("minilm_l6"))
    functions = [module.pair.get_concrete_function(), module.single.get_concrete_function()]
    # As `write_tflite` converts, except that there are no variables to freeze, and freezing
    # would drop the output names that the signatures carry.
    converter = tf.lite.TFLiteConverter.from_concrete_functions(functions, module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = True  # the tensorflow-text ops, which have TFLite kernels
    path = tmp_path / "packing.tflite"
    path.write_bytes(converter.convert())
    # Only tensorflow-text's kernels are registered, so an op that had silently become a
    # custom op would fail here.
    interpreter = tflite_interpreter(path)
    # The PairPacking module's function names are the signature keys.
    assert sorted(interpreter.get_signature_list()) == ["pair", "single"]

    def as_bytes(texts):
        return np.array([text.encode() for text in texts], dtype=object)

    cases = {"pair": dict(text=TEXTS, text_pair=PAIRS), "single": dict(text=TEXTS)}
    for key, inputs in cases.items():
        from_tflite = interpreter.get_signature_runner(key)(
            **{name: as_bytes(texts) for name, texts in inputs.items()})
        from_tensorflow = getattr(module, key)(**{name: tf.constant(texts)
                                                 for name, texts in inputs.items()})
        packer = BertPacker(*module.special_ids, max_length=MAX_LENGTH, pad_to_longest=True)
        from_packer = packer(tuple(module.pieces(tf.constant(texts))
                                   for texts in inputs.values()))
        from_packer["padding_mask"] = tf.cast(from_packer["padding_mask"], tf.int32)
        assert sorted(from_tflite) == sorted(from_tensorflow) == sorted(from_packer)
        for name, value in from_tflite.items():
            np.testing.assert_array_equal(value, from_tensorflow[name].numpy(), err_msg=name)
            np.testing.assert_array_equal(value, from_packer[name].numpy(), err_msg=name)
        # The sentences were chosen so that some rows are cut to MAX_LENGTH and some are not.
        lengths = from_tflite["padding_mask"].sum(1)
        assert lengths.max() == MAX_LENGTH and lengths.min() < MAX_LENGTH
