import json

import pytest

from keras_mapping.data import LabeledTexts, LabelVocabulary, from_lists, read_table

QUOTED = 'the film \'s "twist" is , well , "surprising" '
SST2_LINES = f"sentence\tlabel\n{QUOTED}\t1\nit's dull\t0\n \t0\n"


def test_tsv_is_split_on_tabs_without_quoting(write):
    data = read_table(write("train.tsv", SST2_LINES))
    assert data.texts == [QUOTED, "it's dull", " "]  # the whitespace-only text is kept
    assert data.labels == [1, 0, 0]
    assert data.label_names == ["0", "1"]
    assert data.text_pairs is None
    assert data.source.endswith("train.tsv")


def test_tsv_with_windows_line_ends_and_a_byte_order_mark(write):
    path = write("train.tsv", "\ufeffsentence\tlabel\r\nfine\t1\r\nbad\t0\r\n")
    data = read_table(path, text_column="sentence")
    assert data.texts == ["fine", "bad"]
    assert data.labels == [1, 0]


def test_csv_quoting_and_multiline_fields(write):
    path = write("train.csv", 'text,label\n"a, b",pos\n"say ""hi""\nthen leave",neg\n'
                              "plain,pos\n")
    data = read_table(path)
    assert data.texts == ["a, b", 'say "hi"\nthen leave', "plain"]
    assert data.labels == [1, 0, 1]
    assert data.label_names == ["neg", "pos"]


def test_csv_reports_the_line_a_record_starts_on(write):
    path = write("bad.csv", 'text,label\n"two\nlines",pos\nx,y,z\n')
    with pytest.raises(ValueError, match=r"bad\.csv:4: expected 2 comma-separated fields, found 3"):
        read_table(path)


def test_jsonl_with_integer_labels_unicode_and_trailing_blank_lines(write):
    rows = [{"text": "naïve — 東京", "label": 1}, {"text": "", "label": "0", "extra": [1]}]
    path = write("train.jsonl", "".join(json.dumps(row) + "\n" for row in rows) + "\n  \n")
    data = read_table(path)
    assert data.texts == ["naïve — 東京", ""]
    assert data.labels == [1, 0]


def test_columns_by_name_and_by_index(write):
    path = write("pairs.tsv", "id\tpremise\thypothesis\tgold\n7\ta\tb\tyes\n8\tc\td\tno\n")
    by_name = read_table(path, text_column="premise", label_column="gold",
                         text_pair_column="hypothesis")
    by_index = read_table(path, text_column=1, label_column=3, text_pair_column=2)
    for data in (by_name, by_index):
        assert data.texts == ["a", "c"]
        assert data.text_pairs == ["b", "d"]
        assert data.labels == [1, 0]
    # Without a "label" column the last one is the label; the text is the first other column.
    assert read_table(path).texts == ["7", "8"]


def test_default_text_column_skips_the_label_column(write):
    data = read_table(write("train.tsv", "label\tsentence\n1\tgood\n"))
    assert data.texts == ["good"]


def test_string_labels_get_a_sorted_vocabulary_shared_with_validation(write):
    train = read_table(write("train.tsv", "text\tlabel\na\tsports\nb\tart\nc\tnews\nd\tart\n"))
    assert train.label_names == ["art", "news", "sports"]
    assert train.labels == [2, 0, 1, 0]
    validation = read_table(write("validation.tsv", "text\tlabel\ne\tsports\n"),
                            label_vocabulary=train.label_vocabulary)
    assert validation.labels == [2]
    assert validation.label_names == train.label_names


def test_label_vocabulary_rules_and_json_round_trip():
    assert LabelVocabulary.from_labels(["1", " 0 ", 2]).labels == ("0", "1", "2")
    assert LabelVocabulary.from_labels([-1, 1]).labels == ("-1", "1")  # numeric, not "0..K-1"
    assert LabelVocabulary.from_labels(["10", "9"]).labels == ("9", "10")
    assert LabelVocabulary.from_labels(["b", "10", "a"]).labels == ("10", "a", "b")
    named = LabelVocabulary.from_labels(["pos"], names=["pos", "neg"])  # names give the order
    assert named.encode("neg") == 1
    ids = LabelVocabulary.from_labels([1], names=["negative", "positive"])
    assert ids.labels == ("0", "1") and ids.encode(0) == 0
    assert LabelVocabulary.from_json(ids.to_json()) == ids
    assert json.loads(ids.to_json()) == {"labels": ["0", "1"], "names": ["negative", "positive"]}
    with pytest.raises(ValueError, match=r"labels \['x'\] are neither ids 0\.\.1 nor among"):
        LabelVocabulary.from_labels(["x"], names=["a", "b"])
    with pytest.raises(ValueError,
                       match=r"f\.tsv:9: label 'x' is not in the label set \['a', 'b'\]"):
        LabelVocabulary.from_labels(["a", "b"]).encode("x", where="f.tsv:9")


BAD_INPUTS = [
    ("bad.tsv", "sentence\tlabel\nok\t1\na\tb\t1\n", {},
     r"bad\.tsv:3: expected 2 tab-separated fields, found 3"),
    ("bad.tsv", "sentence\tlabel\nno tab here\n", {},
     r"bad\.tsv:2: expected 2 tab-separated fields, found 1"),
    ("bad.csv", "text,label\nok,1\na,b,1\n", {}, r"bad\.csv:3: expected 2 comma-separated fields"),
    ("bad.tsv", "sentence\tlabel\nok\t1\n", {"text_column": "text"},
     r"bad\.tsv:1: no text column 'text' among the columns \['sentence', 'label'\]"),
    ("bad.tsv", "sentence\tlabel\nok\t1\n", {"label_column": 5},
     r"bad\.tsv:1: label column 5 is out of range for the 2 columns"),
    ("bad.tsv", "sentence\tsentence\tlabel\na\tb\t1\n", {},
     r"bad\.tsv:1: duplicate column 'sentence'"),
    ("bad.tsv", "sentence\tlabel\nok\t1\n", {"text_column": "label"},
     r"bad\.tsv:1: the text, label and text pair columns must differ"),
    ("bad.tsv", "it 's fine\t1\nbad\t0\n", {},
     r"bad\.tsv:1: the label column is named '1', which looks like a label"),
    ("bad.tsv", "sentence\tlabel\nok\t1\nempty\t \n", {}, r"bad\.tsv:3: empty label"),
    ("bad.csv", "text,label\nok,\n", {}, r"bad\.csv:2: empty label"),
    ("bad.tsv", "sentence\tlabel\nok\t1\nmaybe\tmaybe\n",
     {"label_vocabulary": LabelVocabulary(("0", "1"))},
     r"bad\.tsv:3: label 'maybe' is not in the label set \['0', '1'\]"),
    ("bad.tsv", "", {}, r"bad\.tsv: contains no rows"),
    ("bad.jsonl", "\n\n", {}, r"bad\.jsonl: contains no rows"),
    ("bad.tsv", "sentence\tlabel\n", {}, r"bad\.tsv:1: header only; contains no rows"),
    ("bad.tsv", "sentence\tlabel\na\t1\n\nb\t0\n", {},
     r"bad\.tsv:3: blank line before the row on line 4"),
    ("bad.tsv", b"sentence\tlabel\na\t1\ncaf\xe9\t0\n", {}, r"bad\.tsv:3: invalid UTF-8"),
    ("bad.csv", 'text,label\n"a"b,1\n', {}, r"bad\.csv:2: malformed CSV quoting"),
    ("bad.csv", 'text,label\nok,1\n"never closed,1\n', {}, r"bad\.csv:3: malformed CSV quoting"),
    ("bad.jsonl", '{"text": "a", "label": 1}\n\n{"text": "b", "label": 0}\n', {},
     r"bad\.jsonl:2: blank line before the row on line 3"),
    ("bad.jsonl", '{"text": "a", "label": 1}\n{"text": "b", \n', {}, r"bad\.jsonl:2: invalid JSON"),
    ("bad.jsonl", '["a", 1]\n', {}, r"bad\.jsonl:1: expected a JSON object, found list"),
    ("bad.jsonl", '{"text": "a", "label": 1}\n{"text": "b"}\n', {},
     r"bad\.jsonl:2: missing key 'label'"),
    ("bad.jsonl", '{"text": "a", "label": 1.5}\n', {},
     r"bad\.jsonl:1: a label must be a string or an integer, found float"),
    ("bad.jsonl", '{"text": "a", "label": null}\n', {},
     r"bad\.jsonl:1: a label must be a string or an integer, found NoneType"),
    ("bad.jsonl", '{"text": 3, "label": 1}\n', {},
     r"bad\.jsonl:1: the text \(text\) must be a string"),
    ("bad.txt", "sentence\tlabel\n", {},
     r"bad\.txt: unsupported file type '\.txt'; supported: \.csv, \.jsonl, \.tsv"),
]


@pytest.mark.parametrize("name, content, options, message", BAD_INPUTS,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(BAD_INPUTS)])
def test_bad_input_names_file_and_line(write, name, content, options, message):
    with pytest.raises(ValueError, match=message):
        read_table(write(name, content), **options)


def test_bad_bytes_can_be_replaced(write):
    path = write("latin.tsv", b"sentence\tlabel\ncaf\xe9\t1\n")
    assert read_table(path, on_bad_bytes="replace").texts == ["caf\ufffd"]
    assert read_table(path, encoding="latin-1").texts == ["café"]
    with pytest.raises(ValueError, match="on_bad_bytes must be 'error' or 'replace'"):
        read_table(path, on_bad_bytes="skip")
    with pytest.raises(ValueError, match="not ASCII-compatible"):
        read_table(path, encoding="utf-16")


def test_from_lists_checks_its_input():
    data = from_lists(["good", "bad"], [1, 0], label_names=["negative", "positive"])
    assert (data.labels, data.label_names) == ([1, 0], ["negative", "positive"])
    with pytest.raises(ValueError, match=r"in-memory lists: lists of different lengths: "
                                         r"\{'texts': 2, 'labels': 1\}"):
        from_lists(["good", "bad"], [1])
    with pytest.raises(ValueError, match=r"in-memory lists, example 1: the text must be a string"):
        from_lists(["good", b"bad"], [1, 0])
    with pytest.raises(ValueError, match=r"example 0: a label must be a string or an integer"):
        from_lists(["good"], [True])
    with pytest.raises(ValueError, match=r"example 1: label '2' is not in the label set"):
        from_lists(["a", "b"], [0, 2], label_vocabulary=LabelVocabulary(("0", "1")))
    with pytest.raises(ValueError,
                       match=r"in-memory lists: labels \['-1'\] are neither ids 0\.\.1"):
        from_lists(["a", "b"], [0, -1], label_names=["negative", "positive"])
    with pytest.raises(ValueError, match="not both"):
        from_lists(["a"], [0], ["x"], label_vocabulary=LabelVocabulary(("0",)))


def test_labeled_texts_checks_ids_and_cuts_heads():
    data = LabeledTexts(["a", "b", "c"], [0, 1, 1], ["no", "yes"], "lists", ["x", "y", "z"])
    assert data.label_vocabulary.names == ("no", "yes")
    first = data.head(2)
    assert (first.texts, first.labels, first.text_pairs) == (["a", "b"], [0, 1], ["x", "y"])
    with pytest.raises(ValueError, match=r"lists: label ids \[2\] are outside 0\.\.1"):
        LabeledTexts(["a"], [2], ["no", "yes"], "lists")


def test_real_sst2_files(shared):
    train = read_table(shared / "data" / "sst2" / "train.tsv")
    validation = read_table(shared / "data" / "sst2" / "validation.tsv",
                            label_vocabulary=train.label_vocabulary)
    assert len(train) == 67_349
    assert set(train.labels) == {0, 1}
    assert len(validation) == 872
    assert (validation.labels.count(0), validation.labels.count(1)) == (428, 444)
    assert validation.texts[0] == "it 's a charming and often affecting journey . "
    assert "`` radical '' or `` suck '' " in train.texts  # quotes and trailing space survive
