"""`keras-mapping ensemble`: two fine-tuned model directories of one task become one model
directory that evaluate, predict and export take like any other."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from keras_mapping.cli.main import main
from keras_mapping.export import export_model
from keras_mapping.training import FinetuneConfig, finetune
from keras_mapping.training.inference import predict
from tests.helpers import QUIET, cli_json

TEXTS = ["the cast was wonderful .", "its ending was awful .", "a story", ""]


@pytest.fixture(scope="module")
def second_member(tiny_model_dir, tmp_path_factory):
    """The recipe of `tiny_model_dir` from another seed."""
    recipe = json.loads((tiny_model_dir / "training_config.json").read_text())
    out = tmp_path_factory.mktemp("members") / "seed_7"
    finetune(FinetuneConfig(**{**recipe, "seed": 7, "out": str(out)}), **QUIET)
    return out


@pytest.fixture(scope="module")
def ensemble_dir(tiny_model_dir, second_member, tmp_path_factory):
    out = tmp_path_factory.mktemp("ensembles") / "ensemble"
    assert main(["ensemble", "--models", str(tiny_model_dir), str(second_member),
                 "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def validation(tiny_dataset):
    rows = [line.split("\t") for line in
            (tiny_dataset / "validation.tsv").read_text().splitlines()[1:]]
    return [text for text, _ in rows], np.array([int(label) for _, label in rows])


@pytest.fixture(scope="module")
def probabilities(tiny_model_dir, second_member, ensemble_dir, validation):
    """`{directory: predict's probabilities of TEXTS, then of the validation texts}`."""
    texts = TEXTS + validation[0]
    return {directory: np.array([row["probabilities"] for row in predict(directory, texts)])
            for directory in (tiny_model_dir, second_member, ensemble_dir)}


def test_the_ensemble_predicts_the_mean_of_its_members_probabilities(
        tiny_model_dir, second_member, ensemble_dir, probabilities):
    members = [probabilities[d] for d in (tiny_model_dir, second_member)]
    assert np.abs(members[0] - members[1]).max() > 1e-3  # two different models
    np.testing.assert_allclose(probabilities[ensemble_dir], np.mean(members, axis=0),
                               atol=1e-5)


def test_its_metrics_are_the_mean_probabilities_scored(tiny_model_dir, second_member,
                                                        ensemble_dir, tiny_dataset, validation,
                                                        probabilities, capsys):
    labels = validation[1]
    members = (tiny_model_dir, second_member)
    mean = np.mean([probabilities[d][len(TEXTS):] for d in members], axis=0)
    stored = json.loads((ensemble_dir / "metrics.json").read_text())
    assert stored["accuracy"] == pytest.approx(np.mean(mean.argmax(1) == labels))
    assert [m["model"] for m in stored["members"]] == [str(d) for d in members]
    assert [m["seed"] for m in stored["members"]] == [42, 7]
    for directory, member in zip(members, stored["members"]):
        own = probabilities[directory][len(TEXTS):].argmax(1)
        assert member["accuracy"] == pytest.approx(np.mean(own == labels))
        assert "last_round_accuracy" in member and "best_round" in member
    evaluated, = cli_json(capsys, "evaluate", "--model", ensemble_dir, "--dataset", tiny_dataset)
    assert evaluated["accuracy"] == pytest.approx(stored["accuracy"])
    config = json.loads((ensemble_dir / "training_config.json").read_text())
    assert config["method"] == "ensemble" and config["dataset"] == str(tiny_dataset)


def test_the_saved_model_of_an_ensemble_serves_its_predictions(ensemble_dir, probabilities,
                                                                tmp_path):
    artifact = export_model(ensemble_dir, tmp_path / "savedmodel", format="savedmodel")
    served = tf.saved_model.load(str(artifact)).signatures["serving_default"](
        text=tf.constant(TEXTS))
    np.testing.assert_allclose(served["probabilities"].numpy(),
                               probabilities[ensemble_dir][:len(TEXTS)], atol=1e-5)


def edited_copy(model_directory, out, file, change):
    shutil.copytree(model_directory, out)
    path = out / file
    path.write_text(json.dumps(change(json.loads(path.read_text()))))
    return out


def test_members_that_differ_are_refused_naming_the_directory(tiny_model_dir, ensemble_dir,
                                                              tmp_path, capsys):
    relabelled = edited_copy(tiny_model_dir, tmp_path / "relabelled", "task.json",
                             lambda task: {**task, "labels": ["0", "2"]})
    longer = edited_copy(tiny_model_dir, tmp_path / "longer", "training_config.json",
                         lambda config: {**config, "max_length": 48})
    for other, what in ((relabelled, "task"), (longer, "max_length")):
        out = tmp_path / f"out_{other.name}"
        assert main(["ensemble", "--models", str(tiny_model_dir), str(other),
                     "--out", str(out)]) == 2
        error = capsys.readouterr().err
        assert f"'{other}' differs from '{tiny_model_dir}' in its {what}" in error
        assert not out.exists()
    assert main(["ensemble", "--models", str(tiny_model_dir), "--out",
                 str(tmp_path / "one")]) == 2
    assert "at least two model directories, got 1" in capsys.readouterr().err
    assert main(["ensemble", "--models", str(tiny_model_dir), str(tiny_model_dir), "--out",
                 str(ensemble_dir)]) == 2
    assert "already holds a model" in capsys.readouterr().err


def test_attention_plots_ask_for_a_member(ensemble_dir, tmp_path, capsys):
    assert main(["plot", "--kind", "attention", "--model", str(ensemble_dir), "--text",
                 "a witty film", "--out", str(tmp_path / "attention.png")]) == 2
    assert "is an ensemble of 2 models" in capsys.readouterr().err
