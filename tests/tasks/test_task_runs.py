"""Every task end to end through the CLI on tiny data: finetune -> evaluate -> predict ->
export (SavedModel, .keras, TFLite) -> the artifacts in a fresh process agree with predict.
Also: errors leave nothing behind, and PEFT and resume work on a pair task."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from keras_mapping.cli.main import main
from tests.helpers import (QUIET, assert_same_weights, cli_json, killed_then_resumed,
                           variables_created_in_traces)

ANIMALS = ("cat", "dog", "bird", "fish")
# Common flags: the tiny preset learns these toy tasks in a few steps.
TINY = ["--epochs", "2", "--batch-size", "8", "--learning-rate", "5e-3", "--dropout", "0",
        "--evaluations-per-epoch", "1", "--no-freeze-embeddings", "--warmup-ratio", "0",
        "--precision", "fp32", "--max-length", "24", "--verbose", "0"]
PAIRS = [("the cat sat .", "a cat ran ."), ("a dog barks .", "the fish swims ."),
         ("the bird sings .", "a bird flies .")]


def rows(count, seed):
    rng = np.random.default_rng(seed)
    for index in range(count):
        first, second = rng.choice(ANIMALS), rng.choice(ANIMALS)
        yield index, first, second


def write_pair_data(folder, kind):
    """GLUE-like files: `index sentence1 sentence2 label` (same/different animal) or, for
    scores, STS-B's extra columns and a real-valued `score`."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, count, seed in (("train", 48, 0), ("validation", 16, 1)):
        lines = (["index\tyear\tsentence1\tsentence2\tscore"] if kind == "scores"
                 else ["index\tsentence1\tsentence2\tlabel"])
        for index, first, second in rows(count, seed):
            same = first == second
            pair = f"the {first} sat .\ta {second} ran ."
            lines.append(f"{index}\t2012\t{pair}\t{4.5 * same + 0.1 * (index % 5):.3f}"
                         if kind == "scores"
                         else f"{index}\t{pair}\t{'same' if same else 'different'}")
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder


def write_multi_label_data(folder):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    for split, count in (("train", 48), ("validation", 16)):
        lines = ["text,labels"]
        for _ in range(count):
            chosen = sorted(rng.choice(ANIMALS, size=rng.integers(1, 3), replace=False))
            lines.append(f'"a story of {" and ".join(chosen)}","{",".join(chosen)}"')
        (folder / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("task_data")
    return {"pairs": write_pair_data(root / "pairs", "labels"),
            "scores": write_pair_data(root / "scores", "scores"),
            "multi": write_multi_label_data(root / "multi")}


# The task of each dataset, detected (pairs, scores) or asked for (multi-label).
RUNS = {"pairs": ("classification", []), "scores": ("regression", []),
        "multi": ("multi-label", ["--task", "multi-label", "--tune-threshold"])}
# Every format for pairs; each other task through two of them, so that every format meets
# every kind of output (labels, scores, per-label probabilities) while the suite stays short.
FORMATS = {"pairs": ("savedmodel", "keras", "tflite"), "scores": ("savedmodel", "tflite"),
           "multi": ("savedmodel", "keras")}


@pytest.mark.parametrize("name", RUNS)
def test_each_task_end_to_end(name, data, tiny_preset, tmp_path, capsys):
    task, flags = RUNS[name]
    model = tmp_path / "model"
    with variables_created_in_traces() as created:
        trained = cli_json(capsys, "finetune", "--preset", tiny_preset, "--dataset",
                           data[name], "--out", model, *TINY, *flags)[-1]
    assert created == []  # the training step is traced once
    stored = json.loads((model / "task.json").read_text())
    assert stored["task"] == task
    evaluated = cli_json(capsys, "evaluate", "--model", model, "--dataset", data[name])[-1]
    assert evaluated["task"] == task and evaluated["num_examples"] == 16
    if task == "classification":
        assert stored["columns"] == {"text": "sentence1", "text_pair": "sentence2",
                                     "label": "label", "label_columns": None}
        assert evaluated["accuracy"] == pytest.approx(trained["accuracy"])
        assert {"f1", "macro_f1", "mcc"} <= set(evaluated)
        inputs = ["--pair", *PAIRS[0], "--pair", *PAIRS[1], "--pair", *PAIRS[2]]
    elif task == "regression":
        assert evaluated["spearman"] == pytest.approx(trained["spearman"])
        inputs = ["--pair", *PAIRS[0], "--pair", *PAIRS[1], "--pair", *PAIRS[2]]
    else:
        assert evaluated["micro_f1"] == pytest.approx(trained["micro_f1"])
        assert len(stored["thresholds"]) == len(ANIMALS)
        inputs = ["a story of cat", "a story of dog and fish", "a story of bird"]
    predicted = cli_json(capsys, "predict", "--model", model, *inputs)
    assert len(predicted) == 3
    check_plots(model, task, tmp_path, capsys)
    exports = {}
    for format in FORMATS[name]:
        exports[format] = cli_json(capsys, "export", "--model", model, "--out",
                                   tmp_path / format, "--format", format)[-1]["artifact"]
    served = serve_in_a_fresh_process(exports, task, inputs)
    expected = expected_outputs(task, predicted)
    assert sorted(served) == sorted(FORMATS[name])
    for format, outputs in served.items():
        np.testing.assert_allclose(outputs, expected, atol=1e-5, err_msg=format)


def check_plots(model, task, tmp_path, capsys):
    """Training curves (with the task's scores) for every task; attention of a pair; the
    confusion matrix only for classification."""
    assert main(["plot", "--kind", "curves", "--model", str(model), "--out",
                 str(tmp_path / "curves.png")]) == 0
    if task == "classification":  # attention of a pair (loads the model: once is enough)
        assert main(["plot", "--kind", "attention", "--model", str(model), "--text",
                     "the cat sat .", "--text-pair", "a cat ran .", "--layer", "-1", "--out",
                     str(tmp_path / "attention.png")]) == 0
    confusion = main(["plot", "--kind", "confusion", "--model", str(model), "--out",
                      str(tmp_path / "confusion.png")])
    assert confusion == (0 if task == "classification" else 2)
    if task != "classification":
        assert "classification models only" in capsys.readouterr().err
    assert (tmp_path / "curves.png").stat().st_size > 0
    capsys.readouterr()


def expected_outputs(task, predicted):
    if task == "regression":
        return np.array([[row["score"]] for row in predicted])
    return np.array([row["probabilities"] for row in predicted])


FRESH_PROCESS = textwrap.dedent("""
    import json, sys
    import numpy as np, tensorflow as tf, tensorflow_text  # noqa: F401
    exports, task, texts, pairs = json.loads(sys.argv[1])
    key = {"regression": "score"}.get(task, "probabilities")
    args = {"text": tf.constant(texts)}
    if pairs:
        args["text_pair"] = tf.constant(pairs)
    served = tf.saved_model.load(exports["savedmodel"]).signatures["serving_default"](**args)
    out = {"savedmodel": np.asarray(served[key]).reshape(len(texts), -1).tolist()}
    if "keras" in exports:
        import keras, keras_mapping  # noqa: F401
        model = keras.saving.load_model(exports["keras"])
        inputs = [args["text"], args["text_pair"]] if pairs else args["text"]
        out["keras"] = np.asarray(model.predict(inputs, verbose=0)).reshape(
            len(texts), -1).tolist()
    if "tflite" in exports:
        from keras_mapping.export.tflite import run_tflite, tflite_interpreter
        lite = run_tflite(tflite_interpreter(exports["tflite"]), texts, pairs or None)
        out["tflite"] = np.asarray(lite[key]).reshape(len(texts), -1).tolist()
    print(json.dumps(out))
""")


def serve_in_a_fresh_process(exports, task, inputs):
    """Each artifact's outputs, loaded in a new interpreter (only TensorFlow and
    tensorflow-text for the SavedModel)."""
    if inputs and inputs[0] == "--pair":
        texts, pairs = [PAIRS[i][0] for i in range(3)], [PAIRS[i][1] for i in range(3)]
    else:
        texts, pairs = list(inputs), []
    completed = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, json.dumps([exports, task, texts, pairs])],
        capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return {format: np.array(values)
            for format, values in json.loads(completed.stdout.splitlines()[-1]).items()}


def test_bad_files_stop_before_anything_is_written(data, tiny_preset, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["finetune", "--preset", str(tiny_preset), "--dataset", str(data["pairs"]),
                 "--out", str(out), "--text-column", "sentence1", "--text-pair-column",
                 "hypothesis", *TINY]) == 2
    assert "no column 'hypothesis' (--text-pair-column)" in capsys.readouterr().err
    bad = write_pair_data(tmp_path / "bad", "scores")
    with open(bad / "validation.tsv", "a") as file:
        file.write("99\t2012\ta\tb\tvery similar\n")
    assert main(["finetune", "--preset", str(tiny_preset), "--dataset", str(bad),
                 "--out", str(out), *TINY]) == 2
    assert "validation.tsv:18: label 'very similar'" in capsys.readouterr().err
    assert not out.exists()


def test_lora_and_resume_on_a_pair_task(data, tiny_preset, tmp_path):
    """A LoRA run on pairs, killed mid-round and run again, ends where an uninterrupted LoRA
    run ends."""
    from keras_mapping.training import FinetuneConfig, finetune

    config = dict(preset=str(tiny_preset), dataset=str(data["pairs"]), epochs=2,
                  batch_size=8, learning_rate=5e-3, max_length=24, dropout=0.0,
                  freeze_embeddings=False, evaluations_per_epoch=1, warmup_ratio=0.0,
                  precision="fp32", checkpoint_every=2, deterministic=True, method="lora",
                  lora_rank=2)
    straight = finetune(FinetuneConfig(out=str(tmp_path / "straight"), **config), **QUIET)
    assert straight["trainable_parameters"] < straight["total_parameters"] / 10

    resumed = killed_then_resumed(
        finetune, FinetuneConfig(out=str(tmp_path / "resumed"), **config), at_step=5)
    assert resumed["accuracy"] == straight["accuracy"]
    assert_same_weights(tmp_path / "straight", tmp_path / "resumed")
