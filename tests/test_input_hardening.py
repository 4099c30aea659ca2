"""Bad and awkward input at the user's level: what each case gives, and the message it names.

Cases checked elsewhere, by the same rules: CSV quoting, duplicate and missing columns,
labels missing or outside the label set (tests/data/test_readers.py); `max_length` above the
position limit (tests/training/test_reliability.py); batch size below 1, unknown CLI flags
and output directories of another run (tests/training/test_finetune.py).
"""

import itertools
import json
import re

import numpy as np
import pytest

from keras_mapping.cli.main import main
from keras_mapping.data import classification_dataset, from_lists, load_splits
from keras_mapping.tokenizers import BertTokenizer
from keras_mapping.training import FinetuneConfig, finetune
from keras_mapping.training.inference import evaluate, predict

LONG_TEXT = " ".join(["the film was wonderful ."] * 40)  # about 200 tokens


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_and_whitespace_texts_pack_to_cls_sep(text):
    tokenizer = BertTokenizer.from_preset("minilm_l6")
    inputs, _ = next(iter(classification_dataset(from_lists([text], [0]), tokenizer,
                                                 max_length=8, batch_size=1)))
    real = inputs["token_ids"].numpy()[inputs["padding_mask"].numpy().astype(bool)]
    assert real.tolist() == [tokenizer.cls_token_id, tokenizer.sep_token_id]


def test_texts_longer_than_max_length_are_truncated_and_counted(tiny_preset, tiny_dataset,
                                                                tiny_model_dir, tmp_path):
    data = tmp_path / "long_texts"
    data.mkdir()
    rows = (open(tiny_dataset / "train.tsv").read().splitlines()
            + [f"{LONG_TEXT}\t1", f"{LONG_TEXT} awful\t0"])
    (data / "train.tsv").write_text("\n".join(rows) + "\n")
    (data / "validation.tsv").write_text(
        (tiny_dataset / "validation.tsv").read_text() + f"{LONG_TEXT}\t1\n")
    printed = []
    metrics = finetune(FinetuneConfig(preset=str(tiny_preset), dataset=str(data),
                                      out=str(tmp_path / "run"), epochs=0.5, batch_size=32,
                                      max_length=32, precision="fp32"),
                       verbose=0, print_fn=printed.append)
    assert ("finetune: 2 training and 1 validation texts are longer than max_length=32 "
            "tokens and are truncated") in printed
    assert metrics["truncated_train_examples"] == 2
    assert metrics["truncated_validation_examples"] == 1
    assert metrics["num_examples"] == 33  # truncated, not dropped
    assert evaluate(tiny_model_dir, str(data))["truncated_examples"] == 1


def test_invalid_utf8_is_named_or_replaced_on_request(tiny_model_dir, tiny_dataset, tmp_path,
                                                      capsys):
    texts = tmp_path / "texts.txt"
    texts.write_bytes(b"the film was wonderful .\nthe cast was awful \xff .\n")
    assert main(["predict", "--model", str(tiny_model_dir), "--input", str(texts)]) == 2
    error = capsys.readouterr().err
    assert re.search(r"keras-mapping predict: error: .*texts\.txt:2: invalid UTF-8 \(byte 0xff "
                     r".*--on-bad-bytes replace", error), error
    assert main(["predict", "--model", str(tiny_model_dir), "--input", str(texts),
                 "--on-bad-bytes", "replace"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["text"] for row in rows] == ["the film was wonderful .",
                                             "the cast was awful \ufffd ."]

    data = tmp_path / "latin"
    data.mkdir()
    (data / "train.tsv").write_bytes((tiny_dataset / "train.tsv").read_bytes()
                                     + b"caf\xe9 was wonderful .\t1\n")
    (data / "validation.tsv").write_bytes((tiny_dataset / "validation.tsv").read_bytes())
    with pytest.raises(ValueError, match=r"train\.tsv:98: invalid UTF-8"):
        load_splits(str(data))
    assert load_splits(str(data), on_bad_bytes="replace")["train"].texts[-1] == (
        "caf\ufffd was wonderful .")
    with pytest.raises(ValueError, match="on_bad_bytes must be 'error' or 'replace'"):
        FinetuneConfig(on_bad_bytes="skip")


def test_a_dataset_with_one_class_is_refused_before_training(tiny_preset, tmp_path):
    data = tmp_path / "one_class"
    data.mkdir()
    for split in ("train", "validation"):
        (data / f"{split}.tsv").write_text("sentence\tlabel\na fine film\t1\nanother\t1\n")
    with pytest.raises(ValueError, match=r"one_class.*1 label.*at least 2"):
        finetune(FinetuneConfig(preset=str(tiny_preset), dataset=str(data),
                                out=str(tmp_path / "run"), max_length=32), verbose=0)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_labels_the_model_does_not_know_are_named(tiny_model_dir, tmp_path):
    data = tmp_path / "other_labels"
    data.mkdir()
    (data / "validation.tsv").write_text("sentence\tlabel\nfine\t0\nunsure\tneutral\n")
    with pytest.raises(ValueError, match=r"validation\.tsv:3: label 'neutral' is not in the "
                                         r"label set"):
        evaluate(tiny_model_dir, str(data))


def test_predict_reads_a_split_file_of_the_dataset_by_its_columns(tiny_model_dir,
                                                                  tiny_dataset, capsys):
    # Read as lines, its header would be a text and each label part of one.
    split = tiny_dataset / "validation.tsv"
    assert main(["predict", "--model", str(tiny_model_dir), "--input", str(split)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["text"] for row in rows] == [
        line.split("\t")[0] for line in split.read_text().splitlines()[1:]]


def test_evaluate_scores_the_split_file_it_is_given(tiny_model_dir, tiny_dataset, tmp_path,
                                                    capsys):
    holdout = tmp_path / "holdout.csv"  # another name and format than the training files
    holdout.write_text("label,sentence\n" + "".join(
        f"{line.split(chr(9))[1]},{line.split(chr(9))[0]}\n"
        for line in (tiny_dataset / "validation.tsv").read_text().splitlines()[1:]))
    assert main(["evaluate", "--model", str(tiny_model_dir), "--dataset", str(holdout)]) == 0
    scored = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert scored["split"] == "holdout" and scored["num_examples"] == 32
    assert scored["accuracy"] == evaluate(tiny_model_dir, str(tiny_dataset))["accuracy"]


def test_predict_streams_its_input(tiny_model_dir):
    pulled = itertools.count()

    def endless_texts():  # an input no one could read whole
        while True:
            next(pulled)
            yield "the film was wonderful ."

    first = list(itertools.islice(predict(tiny_model_dir, endless_texts(), batch_size=8), 3))
    assert len(first) == 3 and np.isclose(sum(first[0]["probabilities"]), 1, atol=1e-5)
    assert next(pulled) <= 8 * 16 + 1  # one chunk of batches was read, no more


@pytest.mark.parametrize(
    "verb", ["demo", "presets", "finetune", "pretrain", "shard-corpus", "evaluate", "predict",
             "export"])
def test_every_verb_prints_its_help(verb, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([verb, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: keras-mapping {verb}" in capsys.readouterr().out
