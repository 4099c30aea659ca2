import csv
import json

import numpy as np
import pytest

from keras_mapping.tasks.model_directory import load_model_directory
from keras_mapping.cli.main import main
from keras_mapping.training import FinetuneConfig, finetune
from tests.helpers import AtStep


def tiny_config(tiny_preset, tiny_dataset, out, **overrides):
    values = dict(preset=str(tiny_preset), dataset=str(tiny_dataset), out=str(out), epochs=4,
                  dropout=0.0, freeze=0,
                  batch_size=16, learning_rate=5e-3, max_length=32, freeze_embeddings=False,
                  evaluations_per_epoch=1, jit_compile=False, warmup_ratio=0.0,
                  precision="fp32")
    values.update(overrides)
    return FinetuneConfig(**values)


def last_json_line(text):
    return json.loads(text.strip().splitlines()[-1])


def test_cli_round_trip_finetune_evaluate_predict(tiny_preset, tiny_dataset, tmp_path, capsys):
    out = tmp_path / "model"
    assert main(["finetune", "--preset", str(tiny_preset), "--dataset", str(tiny_dataset),
                 "--out", str(out), "--epochs", "10", "--batch-size", "16", "--dropout", "0",
                 "--evaluations-per-epoch", "1", "--freeze", "0",
                 "--learning-rate", "5e-3", "--max-length", "32", "--warmup-ratio", "0",
                 "--no-freeze-embeddings", "--no-jit-compile", "--precision", "fp32",
                 "--verbose", "0"]) == 0
    trained = last_json_line(capsys.readouterr().out)
    assert trained["accuracy"] >= 0.9, trained
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "labels.json", "logs", "metrics.json", "model.keras", "preset", "task.json",
        "task_weights.safetensors", "tokenizer_config.json", "training_config.json", "vocab.txt"]
    assert (out / "logs" / "training.csv").read_text().count("\n") == 11  # header + 10 rounds

    assert main(["evaluate", "--model", str(out), "--dataset", str(tiny_dataset)]) == 0
    evaluated = last_json_line(capsys.readouterr().out)
    assert evaluated["accuracy"] == pytest.approx(trained["accuracy"])
    assert np.sum(evaluated["confusion_matrix"]) == 32
    assert evaluated["examples_per_second"] > 0
    assert set(evaluated) >= {"accuracy", "f1", "loss", "examples_per_second",
                              "confusion_matrix"}

    texts = ["the cast was wonderful .", "its ending was awful ."]
    assert main(["predict", "--model", str(out), *texts]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [row["text"] for row in rows] == texts
    assert [row["label"] for row in rows] == ["1", "0"]
    for row in rows:
        assert sum(row["probabilities"]) == pytest.approx(1.0, abs=1e-5)

    input_file = tmp_path / "texts.txt"
    input_file.write_text("\n".join(texts * 3) + "\n")
    assert main(["predict", "--model", str(out), "--input", str(input_file)]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 6


class Crash(Exception):
    pass


def crash(model):
    raise Crash()  # in the middle of a round, like a killed process (no cleanup runs)


def test_a_text_model_directory_is_the_preset_of_a_second_task(tiny_model_dir, tiny_dataset,
                                                                tmp_path, capsys):
    from keras_mapping.training.finetune import build_task_model, read_finetune_data

    # A second task on the first one's encoder: the 0/1 labels read as scores.
    config = tiny_config(tiny_model_dir, tiny_dataset, tmp_path / "second", task="regression")
    task = read_finetune_data(config)[0]
    model = build_task_model(config, task)
    fine_tuned = load_model_directory(tiny_model_dir).model.backbone
    for ours, theirs in zip(model.backbone.weights, fine_tuned.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)
    assert model.output_shape == (None, 1)  # a new head for the new task
    assert main(["finetune", "--preset", str(tiny_model_dir), "--dataset", str(tiny_dataset),
                 "--task", "regression", "--out", str(tmp_path / "second"), "--epochs", "1",
                 "--batch-size", "16", "--max-length", "32", "--precision", "fp32",
                 "--verbose", "0"]) == 0
    trained = last_json_line(capsys.readouterr().out)
    assert "spearman" in trained
    recipe = json.loads((tmp_path / "second" / "training_config.json").read_text())
    assert recipe["preset"] == str(tiny_model_dir)


def test_a_model_directory_without_a_preset_folder_is_refused(tiny_model_dir, tiny_dataset,
                                                              tmp_path, capsys):
    import shutil

    copy = tmp_path / "adapters"
    shutil.copytree(tiny_model_dir, copy, ignore=shutil.ignore_patterns("preset"))
    assert main(["finetune", "--preset", str(copy), "--dataset", str(tiny_dataset),
                 "--out", str(tmp_path / "out"), "--verbose", "0"]) == 2
    assert f"Model directory '{copy}' holds no preset/ folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_last_round_is_reported_beside_the_best(tiny_model_dir):
    metrics = json.loads((tiny_model_dir / "metrics.json").read_text())
    with open(tiny_model_dir / "logs" / "training.csv", newline="") as handle:
        rounds = [float(row["val_accuracy"]) for row in csv.DictReader(handle)]
    assert len(rounds) == 6
    assert metrics["last_round_accuracy"] == pytest.approx(rounds[-1])
    # The saved weights are the best round's, scored again over the whole split.
    assert metrics["accuracy"] == pytest.approx(rounds[metrics["best_round"] - 1])
    assert metrics["accuracy"] == pytest.approx(max(rounds))


# A plain resume is covered by the SIGKILL test (tests/training/test_reliability.py) and on
# a pair task with LoRA (tests/tasks/test_task_runs.py); here it runs with gradual unfreezing,
# whose frozen blocks must come back right.
@pytest.mark.parametrize("gradual_unfreezing", [1])
def test_killed_and_resumed_run_ends_in_the_same_state(tiny_preset, tiny_dataset, tmp_path,
                                                       gradual_unfreezing):
    # Checkpoints every 3 steps in rounds of 6: the crash after step 8 resumes at step 6.
    settings = dict(dropout=0.1, deterministic=True, epochs=2, evaluations_per_epoch=2,
                    checkpoint_every=3, gradual_unfreezing=gradual_unfreezing)
    finetune(tiny_config(tiny_preset, tiny_dataset, tmp_path / "straight", **settings),
             verbose=0)
    interrupted = tiny_config(tiny_preset, tiny_dataset, tmp_path / "resumed", **settings)
    with pytest.raises(Crash):
        finetune(interrupted, callbacks=[AtStep(8, crash)], verbose=0)  # in round 3 of 4
    assert not (tmp_path / "resumed" / "model.keras").exists()
    finetune(interrupted, verbose=0)
    straight = load_model_directory(tmp_path / "straight").model.get_weights()
    resumed = load_model_directory(tmp_path / "resumed").model.get_weights()
    for a, b in zip(straight, resumed):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # The runs' op determinism is theirs: left on, Keras would drop XLA from later models.
    from tensorflow.python.framework import config as tf_config

    assert not tf_config.is_op_determinism_enabled()


def test_output_directory_guards(tiny_preset, tiny_dataset, tmp_path):
    config = tiny_config(tiny_preset, tiny_dataset, tmp_path / "run", epochs=1)
    finetune(config, verbose=0)
    with pytest.raises(FileExistsError, match="already holds a finished run"):
        finetune(config, verbose=0)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty and holds no keras-mapping run"):
        finetune(tiny_config(tiny_preset, tiny_dataset, other), verbose=0)


def test_unfinished_run_with_another_recipe_is_refused(tiny_preset, tiny_dataset, tmp_path):
    config = tiny_config(tiny_preset, tiny_dataset, tmp_path / "run", epochs=2)
    with pytest.raises(Crash):
        finetune(config, callbacks=[AtStep(3, crash)], verbose=0)
    changed = tiny_config(tiny_preset, tiny_dataset, tmp_path / "run", epochs=2,
                          learning_rate=1e-3)
    with pytest.raises(FileExistsError, match="different recipe.*learning_rate"):
        finetune(changed, verbose=0)


def test_from_scratch_uses_random_weights(tiny_preset, tiny_dataset, tmp_path):
    from keras_mapping.data.layout import Columns
    from keras_mapping.data.readers import LabelVocabulary
    from keras_mapping.models import BertBackbone
    from keras_mapping.tasks.classification import ClassificationTask
    from keras_mapping.training.finetune import build_task_model

    pretrained = BertBackbone.from_preset(tiny_preset)
    task = ClassificationTask(Columns("sentence", None, "label"),
                              LabelVocabulary.from_names(["negative", "positive"]))
    scratch = build_task_model(tiny_config(tiny_preset, tiny_dataset, tmp_path,
                                           from_scratch=True), task)
    assert not np.allclose(np.asarray(scratch.backbone.token_embedding.embeddings),
                           np.asarray(pretrained.token_embedding.embeddings))


@pytest.mark.parametrize("field, value", [("batch_size", 0), ("epochs", 0),
                                          ("learning_rate", -1.0), ("max_length", 2),
                                          ("precision", "fp8"), ("dropout", 1.0),
                                          ("pooling", "max"), ("gradual_unfreezing", -1)])
def test_invalid_recipes_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        FinetuneConfig(**{field: value})


def test_xla_and_op_determinism_are_refused_together():
    with pytest.raises(ValueError, match="jit_compile.*deterministic"):
        FinetuneConfig(jit_compile=True, deterministic=True)


def test_cli_rejects_unknown_flags(capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "--no-such-flag"])
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_evaluate_names_an_incomplete_model_directory(tmp_path, capsys):
    assert main(["evaluate", "--model", str(tmp_path)]) == 2
    assert "not a complete model directory: missing model.keras" in capsys.readouterr().err
