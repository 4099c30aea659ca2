"""`regex_split(_with_offsets)`: tensorflow-text's results, without the checks that made the
tokenizer's graph slow to instantiate."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text

from keras_mapping.tokenizers import BertTokenizer
from keras_mapping.tokenizers.regex_split import regex_split, regex_split_with_offsets

TEXTS = ["Hello, world!", "", "  spaced   out  ", "[CLS] a[SEP]b", "ünïcode — dash"]
DELIMITER, KEPT = r"\s|[,!\[\]—]", r"[,!\[\]—]"


@pytest.mark.parametrize("texts", [TEXTS, [TEXTS[:2], TEXTS[2:4]], "one string, alone"])
def test_splits_as_tensorflow_text_does(texts):
    ours = regex_split_with_offsets(tf.constant(texts), DELIMITER, KEPT)
    theirs = tf_text.regex_split_with_offsets(tf.constant(texts), DELIMITER, KEPT)
    for mine, reference in zip(ours, theirs):
        assert mine.to_list() == reference.to_list()
    assert regex_split(tf.constant(texts), DELIMITER).to_list() == tf_text.regex_split(
        tf.constant(texts), DELIMITER).to_list()


def test_the_tokenizer_graph_checks_no_row_splits():
    tokenizer = BertTokenizer.from_preset("minilm_l6")
    graph = tf.function(tokenizer.tokenize, autograph=False).get_concrete_function(
        tf.TensorSpec([None], tf.string)).graph.as_graph_def()
    checks = [node.name for node in graph.node if node.op in ("If", "Assert")]
    # One check is left: the row counts of the ragged concat that puts special tokens back.
    assert len(checks) == 1 and checks[0].startswith("RaggedConcat/"), checks
    assert len(graph.library.function) == 2  # that check's two branches
    ids = tokenizer.tokenize(tf.constant(["The [MASK] sat.", ""])).to_list()
    np.testing.assert_array_equal(ids[0], tokenizer(["The [MASK] sat."]).to_list()[0])
    assert ids[1] == []
