"""`predict --input`: a split file of the model's dataset is read by its columns, plain lines
as texts or tab-separated pairs, and no line of a table is ever taken for a text."""

import pytest

from keras_mapping.data.layout import Columns
from keras_mapping.data.predict_input import predict_inputs

ONE = Columns("sentence", label="label")
PAIR = Columns("sentence1", "sentence2", "label")


def read(path, columns, pairs=False):
    texts, text_pairs = predict_inputs(path, columns, pairs)
    return list(texts) if text_pairs is None else list(zip(texts, text_pairs))


@pytest.mark.parametrize("name, content", [
    ("validation.tsv", "index\tsentence\tlabel\n0\tgood , fine\t1\n1\tbad\t0\n"),
    ("validation.csv", 'sentence,label\n"good , fine",1\nbad,0\n'),
    ("validation.jsonl", '{"sentence": "good , fine", "label": 1}\n'
                         '{"label": 0, "sentence": "bad"}\n'),
])
def test_a_split_file_is_read_by_the_models_column(tmp_path, name, content):
    (tmp_path / name).write_text(content)
    assert read(tmp_path / name, ONE) == ["good , fine", "bad"]


def test_pairs_come_from_their_columns_or_from_two_fields_a_line(tmp_path):
    table = tmp_path / "dev.tsv"
    table.write_text("index\tsentence1\tsentence2\tlabel\n0\tA cat.\tA pet.\tyes\n")
    assert read(table, PAIR, pairs=True) == [("A cat.", "A pet.")]
    lines = tmp_path / "pairs.tsv"  # no header: every line a pair
    lines.write_text("A cat.\tA pet.\nA dog.\tA fish.\n")
    assert read(lines, PAIR, pairs=True) == [("A cat.", "A pet."), ("A dog.", "A fish.")]
    lines.write_text("A cat.\tA pet.\tyes\n")
    with pytest.raises(ValueError, match=r"pairs\.tsv:1: expected two tab-separated texts"):
        read(lines, PAIR, pairs=True)


def test_plain_lines_are_texts_and_a_tab_among_them_is_an_error(tmp_path):
    lines = tmp_path / "texts.txt"
    lines.write_text("sentence\ngood , fine\n\n")  # a .txt is never a table
    assert read(lines, ONE) == ["sentence", "good , fine", ""]
    lines.write_text("good\nbad\t0\n")
    with pytest.raises(ValueError, match=r"texts\.txt:2: a tab in a line, for a model of one "
                                         r"text: .* header names the model's text column"):
        read(lines, ONE)
    # A TSV that does not name the column is lines too: its label column is not a text.
    (tmp_path / "other.tsv").write_text("text\tlabel\ngood\t1\n")
    with pytest.raises(ValueError, match=r"other\.tsv:1: a tab in a line"):
        read(tmp_path / "other.tsv", ONE)


@pytest.mark.parametrize("name, content, message", [
    ("other.csv", "text,label\ngood,1\n",
     r"other\.csv:1: the columns \['text', 'label'\] lack the model's text column 'sentence'"),
    ("pairs.csv", "sentence1,label\ngood,1\n",
     r"pairs\.csv:1: .* lack the model's text columns 'sentence1' and 'sentence2'"),
    ("rows.jsonl", '{"sentence": "good"}\n{"text": "bad"}\n', r"rows\.jsonl:2: missing key"),
    ("rows.csv", "sentence,label\ngood,1\nbad\n", r"rows\.csv:3: expected 2 comma-separated"),
    ("numbers.jsonl", '{"sentence": 7}\n', r"numbers\.jsonl:1: the text \(sentence\) must be "
                                            r"a string, found int"),
])
def test_a_table_without_the_models_texts_is_refused_with_file_and_line(tmp_path, name,
                                                                         content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(ValueError, match=message):
        read(tmp_path / name, PAIR if name.startswith("pairs") else ONE,
             pairs=name.startswith("pairs"))


def test_a_model_without_columns_reads_lines(tmp_path):
    lines = tmp_path / "texts.csv"  # a token classifier's texts: no columns to look for
    lines.write_text("Peter flew , then\nParis\n")
    assert read(lines, None) == ["Peter flew , then", "Paris"]


def test_the_file_is_read_as_it_is_consumed(tmp_path):
    table = tmp_path / "big.tsv"
    table.write_text("sentence\tlabel\nfirst\t1\n" + "x\n" * 3)  # row 3 is malformed
    texts, _ = predict_inputs(table, ONE)
    assert next(texts) == "first"  # read before the bad row is reached
    with pytest.raises(ValueError, match=r"big\.tsv:3: expected 2 tab-separated fields"):
        next(texts)
