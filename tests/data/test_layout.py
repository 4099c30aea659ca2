"""Which columns hold the texts and labels, which task they ask for, and the errors when the
files do not say (keras_mapping.data.layout, keras_mapping.tasks.datasets)."""

import numpy as np
import pytest

from keras_mapping.data.layout import Columns, choose_columns, detect_task
from keras_mapping.data.readers import read_rows
from keras_mapping.tasks.datasets import DataOptions, load_task_data

RTE = ("index\tsentence1\tsentence2\tlabel\n"
       "0\tA man plays.\tSomeone plays.\tentailment\n"
       "1\tA cat sleeps.\tA dog barks.\tnot_entailment\n")
STSB = ("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
        "0\tnews\tf\t2012\t1\ts\ts\tA plane takes off.\tAn air plane is taking off.\t5.000\n"
        "1\tnews\tf\t2012\t2\ts\ts\tA man plays.\tA woman cooks.\t0.600\n"
        "2\tnews\tf\t2012\t3\ts\ts\tA cat eats.\tA cat is eating.\t4.250\n")
MRPC = ("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
        "1\t11\t12\tHe said yes.\tHe agreed.\n0\t13\t14\tIt rained.\tThe sun shone.\n")


def test_glue_pair_files_are_recognised(write):
    assert choose_columns(read_rows(write("train.tsv", RTE))) == Columns(
        "sentence1", "sentence2", "label")
    assert choose_columns(read_rows(write("stsb.tsv", STSB))) == Columns(
        "sentence1", "sentence2", "score")
    # MRPC: the label is the first column, named Quality.
    assert choose_columns(read_rows(write("mrpc.tsv", MRPC))) == Columns(
        "#1 String", "#2 String", "Quality")


def test_an_id_column_is_never_the_text(write):
    table = read_rows(write("train.csv", "id,review_body,stars\n17,fine film,pos\n18,dull,neg\n"))
    assert choose_columns(table) == Columns("review_body", None, "stars")


def test_ambiguous_and_missing_text_columns_name_the_flag(write):
    two = read_rows(write("two.csv", "headline,summary,label\nA,b c,x\nD,e f,y\n"))
    with pytest.raises(ValueError, match=r"two\.csv:1: 2 columns could hold the text: "
                                         r"\['headline', 'summary'\].*--text-column"):
        choose_columns(two)
    numbers = read_rows(write("numbers.csv", "id,year,label\n1,2012,x\n2,2013,y\n"))
    with pytest.raises(ValueError, match=r"no column holds text.*columns of numbers, never "
                                         r"text: \['id', 'year'\].*--text-column"):
        choose_columns(numbers)
    with pytest.raises(ValueError, match=r"no column 'premise' \(--text-pair-column\)"):
        choose_columns(read_rows(write("rte.tsv", RTE)), text_column="sentence1",
                       text_pair_column="premise")


def test_task_detection():
    assert detect_task(["2.615", "0.000", "5.000"], "f", "score") == "regression"
    assert detect_task(["1", "0", "1"], "f", "label") == "classification"
    assert detect_task(["1.0", "0.0"], "f", "label") == "classification"  # whole numbers
    assert detect_task(["pos", "neg"], "f", "label") == "classification"
    with pytest.raises(ValueError, match=r"f: the label column 'index' holds 200 different "
                                         r"whole numbers.*--task classification or --task "
                                         r"regression"):
        detect_task([str(i) for i in range(200)], "f", "index")
    with pytest.raises(ValueError, match=r"holds 200 different values.*200 of them hold ','.*"
                                         r"--task multi-label"):
        detect_task([f"a{i},b" for i in range(200)], "f", "tags")


def test_glue_folders_become_their_tasks(write, tmp_path):
    for split in ("train", "validation"):
        write(f"rte/{split}.tsv", RTE)
        write(f"stsb/{split}.tsv", STSB)
    task, splits = load_task_data(tmp_path / "rte")
    assert (task.name, task.pairs, task.label_names) == ("classification", True,
                                                         ["entailment", "not_entailment"])
    assert splits["validation"].text_pairs == ["Someone plays.", "A dog barks."]
    task, splits = load_task_data(tmp_path / "stsb")
    assert task.name == "regression" and task.pairs
    np.testing.assert_allclose(splits["train"].targets[:, 0], [5.0, 0.6, 4.25])


def test_split_headers_must_agree(write, tmp_path):
    write("data/train.csv", "text,category\nfine,a\nbad,b\n")
    write("data/validation.csv", "text,label\nfine,a\n")
    with pytest.raises(ValueError, match=r"train\.csv and .*validation\.csv have different "
                                         r"columns: \['text', 'category'\] and \['text', "
                                         r"'label'\]"):
        load_task_data(tmp_path / "data")


def test_regression_labels_must_be_numbers(write, tmp_path):
    write("s/train.tsv", "sentence1\tsentence2\tscore\na\tb\t1.5\nc\td\t2.5\n")
    write("s/validation.tsv", "sentence1\tsentence2\tscore\na\tb\thigh\n")
    with pytest.raises(ValueError, match=r"validation\.tsv:2: label 'high' in column 'score' "
                                         r"is not a finite number"):
        load_task_data(tmp_path / "s")


def test_multi_label_from_a_delimited_column(write, tmp_path):
    write("m/train.csv", 'text,labels\nsun and rain,"sun, rain"\nsnow,snow\nnothing,\n')
    write("m/validation.csv", 'text,labels\nfog,fog\n')
    options = DataOptions(task="multi-label")
    with pytest.raises(ValueError, match=r"validation\.csv:2: label 'fog' is not in the label "
                                         r"set \['rain', 'snow', 'sun'\]"):
        load_task_data(tmp_path / "m", options)
    task, splits = load_task_data(tmp_path / "m", options, splits=("train",))
    assert task.label_names == ["rain", "snow", "sun"]
    assert splits["train"].targets.tolist() == [[1, 0, 1], [0, 1, 0], [0, 0, 0]]


def test_multi_label_from_0_1_columns(write, tmp_path):
    write("c/train.csv", "text,toxic,spam\nbuy now,0,1\nyou fool,1,0\n")
    write("c/validation.csv", "text,toxic,spam\nhello,0,maybe\n")
    options = DataOptions(label_columns=("toxic", "spam"))
    task, splits = load_task_data(tmp_path / "c", options, splits=("train",))
    assert (task.name, task.label_names) == ("multi-label", ["toxic", "spam"])
    assert splits["train"].targets.tolist() == [[0, 1], [1, 0]]
    with pytest.raises(ValueError, match=r"validation\.csv:2: column 'spam' must hold 0 or 1"):
        load_task_data(tmp_path / "c", options)
