"""Token classification on tiny data: alignment and windows exact against hand-made outputs,
then the whole flow through the CLI, with the SavedModel checked in a fresh process."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from keras_mapping.cli.main import main
from keras_mapping.data.token_files import TaggedSentences
from keras_mapping.tasks.token_classification import RawTexts, TokenClassificationTask
from keras_mapping.tokenizers import BertTokenizer
from tests.helpers import cli_json

TAGS = ["O", "B-LOC", "B-PER", "I-LOC", "I-PER"]
PEOPLE = ["Peter Blackburn", "Ada Lovelace", "Jean-Luc Picard", "Zoë Ångström"]
PLACES = ["Paris", "New York", "Zürich", "Saint-Étienne"]
TINY = ["--epochs", "3", "--batch-size", "8", "--learning-rate", "5e-3", "--max-length", "12",
        "--evaluations-per-epoch", "1", "--precision", "fp32", "--verbose", "0",
        "--no-freeze-embeddings"]


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer.from_preset("minilm_l6")


def sentence(rng, filler=0):
    person, place = PEOPLE[rng.integers(len(PEOPLE))].split(), \
        PLACES[rng.integers(len(PLACES))].split()
    words = ["so"] * filler + person + ["visited"] + place + ["."]
    tags = (["O"] * filler + ["B-PER"] + ["I-PER"] * (len(person) - 1) + ["O", "B-LOC"]
            + ["I-LOC"] * (len(place) - 1) + ["O"])
    return words, tags


def write_conll(path, count, seed, filler=0):
    rng = np.random.default_rng(seed)
    lines = ["-DOCSTART- -X- -X- O", ""]
    for _ in range(count):
        words, tags = sentence(rng, filler)
        lines += [f"{word} NNP B-NP {tag}" for word, tag in zip(words, tags)] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def ner_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ner")
    write_conll(folder / "train.txt", 48, 0)
    write_conll(folder / "validation.txt", 12, 1, filler=6)  # longer than --max-length 12
    write_conll(folder / "test.txt", 8, 2)
    return folder


def perfect_outputs(windows):
    """Logits that put each scored position's target first: what a perfect tagger says."""
    outputs = []
    for targets in windows.targets:
        logits = np.zeros((len(targets), len(TAGS)))
        logits[np.arange(len(targets)), np.maximum(targets, 0)] = 5.0
        outputs.append(logits)
    return outputs


@pytest.mark.parametrize("max_length,stride", [(64, None), (8, None), (6, 1), (10, 8)])
@pytest.mark.parametrize("label_all_pieces", [False, True])
def test_tags_to_pieces_to_words_gives_the_tags_back(tokenizer, max_length, stride,
                                                     label_all_pieces):
    rng = np.random.default_rng(3)
    words, tags = zip(*(sentence(rng, filler) for filler in (0, 3, 9)))
    examples = TaggedSentences(list(words), list(tags), TAGS, "lists", [1, 2, 3])
    task = TokenClassificationTask(TAGS, label_all_pieces=label_all_pieces, stride=stride)
    windows = task.windows(examples, tokenizer, max_length)
    assert all(len(ids) <= max_length for ids in windows.token_ids)
    if max_length < 20:
        assert len(windows) > len(examples)  # long sentences were windowed
    # Every word is scored in exactly one window.
    scored = {}
    for window, words_here in enumerate(windows.scored_words):
        for word in words_here[words_here >= 0]:
            key = (int(windows.sentences[window]), int(word))
            assert key not in scored
            scored[key] = window
    assert len(scored) == sum(len(w) for w in words)
    assert task.predicted_tags(perfect_outputs(windows), examples) == list(tags)
    report = task.report(perfect_outputs(windows), examples)
    assert report["f1"] == 1.0 and report["true_entities"] == 6


def test_later_pieces_and_split_words_carry_the_continuation(tokenizer):
    examples = TaggedSentences([["Jean-Luc", "spoke"]], [["B-PER", "O"]], TAGS, "lists", [1])
    task = TokenClassificationTask(TAGS)
    windows = task.windows(examples, tokenizer, 32)
    pieces = [tokenizer.id_to_token(int(i)) for i in windows.token_ids[0]]
    targets = dict(zip(pieces, windows.targets[0]))
    assert pieces[:5] == ["[CLS]", "jean", "-", "luc", "spoke"]
    assert (targets["jean"], targets["-"], targets["luc"], targets["spoke"]) == (2, 4, 4, 0)
    assert targets["[CLS]"] == targets["[SEP]"] == -1


def test_raw_texts_get_every_word_scored_once(tokenizer):
    task = TokenClassificationTask(TAGS)
    examples = RawTexts(["Ada  Lovelace visited Zürich.", "", "word " * 30])
    windows = task.windows(examples, tokenizer, 10)
    assert windows.word_counts == [5, 0, 30]
    per_word = windows.word_predictions(
        [np.arange(len(ids)) for ids in windows.token_ids], fill=None)
    assert all(value is not None for words in per_word for value in words)


TEXTS = ["Ada Lovelace visited  Zürich today.", "Zoë Ångström visited Saint-Étienne 🙂 東京",
         "so " * 12 + "Jean-Luc Picard visited New York ."]

FRESH_PROCESS = textwrap.dedent("""
    import json, sys
    import numpy as np, tensorflow as tf, tensorflow_text  # noqa: F401
    from keras_mapping.tasks.entities import served_entities
    path, texts = json.loads(sys.argv[1])
    out = tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(texts))
    out = {key: value.numpy() for key, value in out.items()}
    print(json.dumps([served_entities(text, {key: value[i] for key, value in out.items()})
                      for i, text in enumerate(texts)], ensure_ascii=False))
""")


def test_token_classification_end_to_end(ner_data, tiny_preset, tmp_path, capsys):
    """With LoRA, so that a parameter-efficient tagger goes the whole way too (the notebook
    runs the full method)."""
    model = tmp_path / "model"
    trained = cli_json(capsys, "finetune", "--preset", tiny_preset, "--dataset", ner_data,
                       "--out", model, "--method", "lora", "--lora-rank", "2", *TINY)[-1]
    assert trained["trainable_parameters"] < trained["total_parameters"] / 10
    assert (model / "task_weights.safetensors").is_file()
    stored = json.loads((model / "task.json").read_text())
    assert stored["task"] == "token-classification" and stored["tag_names"] == TAGS
    evaluated = cli_json(capsys, "evaluate", "--model", model, "--dataset", ner_data)[-1]
    assert evaluated["f1"] == pytest.approx(trained["f1"])
    tested = cli_json(capsys, "evaluate", "--model", model, "--dataset", ner_data,
                      "--split", "test")[-1]
    assert tested["sentences"] == 8 and tested["split"] == "test"
    assert {"precision", "recall", "token_accuracy", "per_type"} <= set(evaluated)
    predicted = cli_json(capsys, "predict", "--model", model, *TEXTS)
    assert [row["text"] for row in predicted] == TEXTS
    for row in predicted:
        for entity in row["entities"]:
            assert row["text"][entity["start"]:entity["end"]] == entity["text"]
    artifact = cli_json(capsys, "export", "--model", model, "--out", tmp_path / "served",
                        "--format", "savedmodel")[-1]["artifact"]
    assert main(["export", "--model", str(model), "--out", str(tmp_path / "lite"),
                 "--format", "tflite"]) == 2
    assert "exports as --format savedmodel only" in capsys.readouterr().err
    assert not (tmp_path / "lite").exists()
    completed = subprocess.run([sys.executable, "-c", FRESH_PROCESS,
                                json.dumps([artifact, TEXTS])],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    served = json.loads(completed.stdout.splitlines()[-1])
    for row, entities in zip(predicted, served):
        assert [(e["type"], e["start"], e["end"]) for e in entities] == \
            [(e["type"], e["start"], e["end"]) for e in row["entities"]]
        np.testing.assert_allclose([e["score"] for e in entities],
                                   [e["score"] for e in row["entities"]], atol=2e-4)


def test_bad_token_files_stop_before_anything_is_written(ner_data, tiny_preset, tmp_path,
                                                         capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.txt").write_text((ner_data / "train.txt").read_text())
    (bad / "validation.txt").write_text("Ada NNP B-NP B-PER\nLovelace NNP I-PER\n")
    out = tmp_path / "never"
    assert main(["finetune", "--preset", str(tiny_preset), "--dataset", str(bad), "--out",
                 str(out), *TINY]) == 2
    assert "validation.txt:2" in capsys.readouterr().err
    (bad / "validation.txt").write_text("Ada NNP B-NP B-DATE\n")
    assert main(["finetune", "--preset", str(tiny_preset), "--dataset", str(bad), "--out",
                 str(out), *TINY]) == 2
    assert "B-DATE" in capsys.readouterr().err
    assert not out.exists()


def test_static_shapes_pad_batches_to_buckets_with_zero_weights(tokenizer):
    rng = np.random.default_rng(5)
    words, tags = zip(*(sentence(rng, filler) for filler in (0, 2, 20)))
    examples = TaggedSentences(list(words), list(tags), TAGS, "lists", [1, 2, 3])
    task = TokenClassificationTask(TAGS)
    batches = list(task.dataset(examples, tokenizer, 64, batch_size=1, buckets="auto"))
    lengths = [int(features["token_ids"].shape[1]) for features, _, _ in batches]
    assert set(lengths) <= {16, 24, 32, 48, 64} and len(lengths) == 3
    for (features, targets, weights), ids in zip(batches, task.windows(examples, tokenizer,
                                                                          64).token_ids):
        assert int(features["padding_mask"].numpy().sum()) == len(ids)
        assert float(weights.numpy()[0, len(ids):].sum()) == 0.0
