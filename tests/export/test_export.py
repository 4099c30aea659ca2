import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_mapping.cli.main import main
from keras_mapping.export import export_model
from keras_mapping.export.saved_model import TaskServer
from keras_mapping.training.inference import predict

TEXTS = ["the cast was wonderful .", "its ending was awful .", "", "a story",
         "unflinchingly bleak and desperate " * 20]

FRESH_PROCESS = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the tokenizer's ops)
served = tf.saved_model.load(sys.argv[1])
outputs = served.signatures["serving_default"](text=tf.constant(json.loads(sys.argv[2])))
print(json.dumps({
    "probabilities": outputs["probabilities"].numpy().tolist(),
    "label_id": outputs["label_id"].numpy().tolist(),
    "label": [label.decode() for label in outputs["label"].numpy()],
    "signatures": sorted(served.signatures),
    "foreign_modules": sorted({name.split(".")[0] for name in sys.modules
                               if name.split(".")[0] in ("keras_mapping", "keras_hub")}),
}))
"""


def predicted(model_dir, texts):
    rows = list(predict(model_dir, texts))
    return np.array([row["probabilities"] for row in rows]), [row["label"] for row in rows]


TEXT_SIGNATURE_TRACES = []  # the texts' arity of each trace of the export's text signature


@pytest.fixture(scope="module")
def saved_model(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports") / "savedmodel"
    serve_text = TaskServer._serve_text
    with pytest.MonkeyPatch.context() as patch:  # its Python body runs once per trace
        patch.setattr(TaskServer, "_serve_text", lambda self, *texts: (
            TEXT_SIGNATURE_TRACES.append(len(texts)) or serve_text(self, *texts)))
        assert main(["export", "--model", str(tiny_model_dir), "--out", str(out)]) == 0
    return out


def test_the_export_traces_its_text_signature_once(saved_model):
    # Traced before the save and again inside it, a tiny pair model's export took 11 s.
    assert TEXT_SIGNATURE_TRACES == [1]


def test_saved_model_serves_text_in_a_fresh_process_like_predict(tiny_model_dir, saved_model):
    assert sorted(p.name for p in saved_model.iterdir()) == ["1", "labels.json", "task.json"]
    completed = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(saved_model / "1"), json.dumps(TEXTS)],
        capture_output=True, text=True, check=True)
    served = json.loads(completed.stdout.strip().splitlines()[-1])
    assert served["foreign_modules"] == []
    assert served["signatures"] == ["serve_tokens", "serving_default"]
    probabilities, labels = predicted(tiny_model_dir, TEXTS)
    np.testing.assert_allclose(served["probabilities"], probabilities, atol=1e-5)
    assert served["label"] == labels
    assert served["label_id"] == probabilities.argmax(1).tolist()


def test_token_signature_matches_the_text_signature(tiny_model_dir, saved_model):
    from keras_mapping.tasks.model_directory import load_model_directory
    from keras_mapping.tokenizers import BertTextPreprocessor

    bundle = load_model_directory(tiny_model_dir)
    features = BertTextPreprocessor(bundle.tokenizer, max_length=bundle.max_length)(
        tf.constant(TEXTS))
    served = tf.saved_model.load(str(saved_model / "1"))
    from_tokens = served.signatures["serve_tokens"](**features)
    from_text = served.signatures["serving_default"](text=tf.constant(TEXTS))
    np.testing.assert_allclose(from_tokens["probabilities"], from_text["probabilities"],
                               atol=1e-6)


def test_saved_model_cli_lists_the_signatures(saved_model):
    cli = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir",
           str(saved_model / "1"), "--tag_set", "serve", "--signature_def", "serving_default"]
    shown = subprocess.run(cli, capture_output=True, text=True, check=True).stdout
    for expected in ("inputs['text']", "DT_STRING", "outputs['probabilities']",
                     "outputs['label_id']", "outputs['label']"):
        assert expected in shown


def test_keras_archive_reloads_and_predicts_identically(tiny_model_dir, tmp_path):
    artifact = export_model(tiny_model_dir, tmp_path / "keras", format="keras")
    reloaded = keras.saving.load_model(artifact)
    probabilities, _ = predicted(tiny_model_dir, TEXTS)
    np.testing.assert_allclose(reloaded.predict(tf.constant(TEXTS), verbose=0), probabilities,
                               atol=1e-5)


def test_tflite_with_text_input_agrees_with_the_saved_model(tiny_model_dir, saved_model,
                                                            tmp_path):
    from keras_mapping.export.tflite import run_tflite, tflite_interpreter

    artifact = export_model(tiny_model_dir, tmp_path / "tflite", format="tflite")
    texts = TEXTS + [f"the film was {word} ." for word in ("awful", "wonderful", "fine")]
    outputs = run_tflite(tflite_interpreter(artifact), texts)
    served = tf.saved_model.load(str(saved_model / "1")).signatures["serving_default"](
        text=tf.constant(texts))
    np.testing.assert_allclose(outputs["probabilities"], served["probabilities"], atol=1e-5)
    np.testing.assert_array_equal(outputs["label_id"], served["label_id"])


def test_export_errors_name_the_problem(tiny_model_dir, tmp_path, capsys):
    assert main(["export", "--model", str(tiny_model_dir), "--out", str(tmp_path / "x"),
                 "--format", "onnx"]) == 2
    assert "`format` must be one of ('savedmodel', 'keras', 'tflite'), got 'onnx'" in (
        capsys.readouterr().err)

    incomplete = tmp_path / "no_vocabulary"
    incomplete.mkdir()
    for path in tiny_model_dir.iterdir():
        if path.is_file() and path.name != "vocab.txt":
            (incomplete / path.name).write_bytes(path.read_bytes())
    assert main(["export", "--model", str(incomplete), "--out", str(tmp_path / "y")]) == 2
    assert "missing vocab.txt" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()

    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(FileExistsError, match="already exists.*--overwrite"):
        export_model(tiny_model_dir, existing, format="keras")
    export_model(tiny_model_dir, existing, format="keras", overwrite=True)
    assert sorted(p.name for p in existing.iterdir()) == ["labels.json", "model.keras", "task.json"]


def test_a_failed_export_leaves_nothing_behind(tiny_model_dir, tmp_path, monkeypatch):
    import keras_mapping.export as export

    def fail(bundle, staging, format, quantize=None):
        (staging / "half_written").write_text("x")
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "_write", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        export_model(tiny_model_dir, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
