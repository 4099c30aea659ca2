"""The library's tf.data pipelines are traced as written: autograph rewrites none of our
functions (keras_mapping/tracing.py says why)."""

import contextlib

import tensorflow as tf

from keras_mapping.data import (causal_lm_dataset, classification_dataset, contrastive_dataset,
                                from_lists, masked_lm_dataset, open_corpus, training_examples)
from keras_mapping.data.image_views import contrastive_image_dataset, unlabeled_images
from keras_mapping.data.images import DEFAULT_MEAN, DEFAULT_STD, image_dataset, read_image_split
from keras_mapping.tokenizers import BertTokenizer, train_wordpiece_vocabulary
from keras_mapping.tracing import as_written
from keras_mapping.training.distribute import as_distributable
from tests.helpers import write_image_folder


@contextlib.contextmanager
def functions_autograph_rewrites():
    """Yields the list of `(name, file)` of every function autograph rewrites meanwhile,
    cached or not. No public API reports it: this wraps autograph's `_convert_actual`, which
    every conversion goes through (a rename in TensorFlow fails here, loudly)."""
    from tensorflow.python.autograph.impl import api

    convert, rewritten = api._convert_actual, []

    def recording(entity, program_ctx):
        code = getattr(entity, "__code__", None)
        rewritten.append((getattr(entity, "__qualname__", repr(entity)),
                          code.co_filename if code else "?"))
        return convert(entity, program_ctx)

    api._convert_actual = recording
    try:
        yield rewritten
    finally:
        api._convert_actual = convert


def ours(rewritten):
    return [name for name, filename in rewritten if "/keras_mapping/" in filename]


def test_the_recorder_sees_a_function_autograph_rewrites():
    def double(x):
        return x * 2

    with functions_autograph_rewrites() as rewritten:
        list(tf.data.Dataset.range(2).map(double))
        list(tf.data.Dataset.range(2).map(as_written(double)))
    assert [name for name, _ in rewritten].count(double.__qualname__) == 1


def test_text_and_pretraining_pipelines_are_traced_as_written(tmp_path):
    tokenizer = BertTokenizer.from_preset("minilm_l6")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(f"the film {i} was good .\nits cast was bad ." for i in
                                  range(12)))
    sentences = from_lists(["a fine film", "a dull plot .", "the cast"] * 4, [0, 1, 0] * 4)
    pairs = training_examples(open_corpus([corpus]), next_sentence=True)
    with functions_autograph_rewrites() as rewritten:
        batches = [
            classification_dataset(sentences, tokenizer, max_length=16, batch_size=4,
                                   buckets="auto", group_by_length=True),
            masked_lm_dataset(pairs, tokenizer, max_length=16, batch_size=4, seed=0,
                              next_sentence=True, whole_word=True),
            causal_lm_dataset(sentences, tokenizer, max_length=16, batch_size=4),
            contrastive_dataset(training_examples(open_corpus([corpus])), tokenizer,
                                max_length=16, batch_size=4),
        ]
        for dataset in batches:
            next(iter(as_distributable(dataset)))
        train_wordpiece_vocabulary([str(corpus)], vocabulary_size=40)
    assert rewritten, "nothing recorded: keras-hub's vocabulary trainer is still rewritten"
    assert ours(rewritten) == []


def test_a_users_pipeline_and_function_over_the_tokenizer_rewrite_none_of_ours():
    tokenizer = BertTokenizer.from_preset("minilm_l6")
    texts = tf.data.Dataset.from_tensor_slices(["Café au lait", "a fine film"])
    with functions_autograph_rewrites() as rewritten:
        next(iter(texts.map(tokenizer.tokenize_with_offsets)))
        next(iter(texts.batch(2).map(tokenizer.tokenize)))
        next(iter(texts.map(lambda text: tokenizer.detokenize(tokenizer.tokenize(text)))))
        words = tf.function(lambda sentence: tokenizer.tokenize_words(sentence)["token_ids"])
        words(tf.constant(["Visited", "Zürich"]))
    assert rewritten, "the users' own functions are rewritten, as they should be"
    assert ours(rewritten) == []


def test_image_pipelines_are_traced_as_written(tmp_path):
    folder = write_image_folder(tmp_path / "colours")
    with functions_autograph_rewrites() as rewritten:
        files = read_image_split(folder, "train")
        next(iter(image_dataset(files, (8, 8), 4, augmentation={"crop_padding": 1,
                                                                 "flip": True})))
        next(iter(contrastive_image_dataset(unlabeled_images(folder), (8, 8), 4,
                                            DEFAULT_MEAN, DEFAULT_STD, seed=0)))
    assert ours(rewritten) == []
