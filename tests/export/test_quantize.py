"""`export --quantize`: TFLite int8 (dynamic range) and float16 files and the Keras-int8
SavedModel keep their signatures and agree with the float32 model; the formats and tasks
that cannot be quantized say so.

Tolerances (max abs difference of probabilities from the float32 model): int8 0.01, float16
1e-3, 10x or more above what these tiny models give (Keras 3.15, TensorFlow 2.21, x86 CPU):
the text classifier's TFLite int8 4.5e-4, float16 5.6e-5, its Keras-int8 SavedModel 8.4e-4;
the ResNet-20 image classifier's TFLite on its validation images int8 3.8e-4, float16 2.5e-5
(on uniform-noise pixels, far from its training images, 0.042 and 3.1e-3).
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from keras_mapping.cli.main import main
from keras_mapping.export import check_quantization
from keras_mapping.training.inference import predict
from tests.helpers import cli_json, write_image_folder

TOLERANCE = {None: 1e-5, "float16": 1e-3, "int8": 1e-2}
TEXTS = ["the cast was wonderful .", "its ending was awful .", "", "a story",
         "unflinchingly bleak and desperate " * 20] + [
    f"{subject} was {word} ." for subject in ("the film", "this plot", "the acting")
    for word in ("awful", "wonderful", "fine")]

# A fresh interpreter per file in a process that has not built the model: only
# `tensorflow` and `tensorflow_text` (the tokenizer's TFLite kernels).
FRESH_TFLITE = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow_text as tf_text
    from tensorflow.lite.python import interpreter
    paths, texts = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    out = {}
    for path in paths:
        lite = interpreter.InterpreterWithCustomOps(
            custom_op_registerers=tf_text.tflite_registrar.SELECT_TFTEXT_OPS, model_path=path)
        runner = lite.get_signature_runner("serving_default")
        outputs = runner(text=np.array([text.encode() for text in texts], dtype=object))
        out[path] = {"signatures": sorted(lite.get_signature_list()),
                     "probabilities": outputs["probabilities"].tolist(),
                     "label_id": outputs["label_id"].tolist()}
    print(json.dumps(out))
""")

FRESH_SAVED_MODEL = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # noqa: F401
    served = tf.saved_model.load(sys.argv[1])
    outputs = served.signatures["serving_default"](text=tf.constant(json.loads(sys.argv[2])))
    print(json.dumps({
        "probabilities": outputs["probabilities"].numpy().tolist(),
        "label": [label.decode() for label in outputs["label"].numpy()],
        "signatures": sorted(served.signatures),
        "foreign_modules": sorted({name.split(".")[0] for name in sys.modules
                                   if name.split(".")[0] in ("keras_mapping", "keras_hub")}),
    }))
""")


def exported(capsys, model, out, format, quantize):
    """Runs `export` and checks what it prints and records; returns the artifact's path."""
    flags = [] if quantize is None else ["--quantize", quantize]
    printed = cli_json(capsys, "export", "--model", model, "--out", out, "--format", format,
                       *flags)[-1]
    assert printed["format"] == format and printed["quantization"] == quantize
    from keras_mapping.export import artifact_bytes

    assert printed["artifact_bytes"] == artifact_bytes(printed["artifact"]) > 0
    task = json.loads((out / "task.json").read_text())
    assert task["export"] == {"format": format, "quantization": quantize}
    return printed["artifact"], printed["artifact_bytes"]


def assert_agree(probabilities, reference, quantize):
    probabilities, reference = np.asarray(probabilities), np.asarray(reference)
    np.testing.assert_allclose(probabilities, reference, atol=TOLERANCE[quantize],
                               err_msg=f"quantize={quantize}")
    # Labels agree wherever the float32 model is not within the tolerance of a tie.
    top_two = np.sort(reference, axis=1)[:, -2:]
    clear = top_two[:, 1] - top_two[:, 0] > 2 * TOLERANCE[quantize]
    np.testing.assert_array_equal(probabilities.argmax(1)[clear], reference.argmax(1)[clear])


def test_quantized_text_tflite_serves_through_the_signature_runner(tiny_model_dir, tmp_path,
                                                                   capsys):
    artifacts, sizes = {}, {}
    for quantize in (None, "int8", "float16"):
        artifacts[quantize], sizes[quantize] = exported(
            capsys, tiny_model_dir, tmp_path / str(quantize), "tflite", quantize)
    assert sizes["int8"] < sizes["float16"] < sizes[None]
    completed = subprocess.run(
        [sys.executable, "-c", FRESH_TFLITE, json.dumps(list(artifacts.values())),
         json.dumps(TEXTS)], capture_output=True, text=True, check=True)
    served = json.loads(completed.stdout.strip().splitlines()[-1])
    reference = np.array([row["probabilities"] for row in predict(tiny_model_dir, TEXTS)])
    for quantize, artifact in artifacts.items():
        outputs = served[artifact]
        assert outputs["signatures"] == ["serving_default"]
        assert_agree(outputs["probabilities"], reference, quantize)
        assert outputs["label_id"] == np.argmax(outputs["probabilities"], 1).tolist()


def test_int8_saved_model_serves_text_in_a_fresh_process(tiny_model_dir, tmp_path, capsys):
    artifact, _ = exported(capsys, tiny_model_dir, tmp_path / "int8", "savedmodel", "int8")
    completed = subprocess.run(
        [sys.executable, "-c", FRESH_SAVED_MODEL, artifact, json.dumps(TEXTS)],
        capture_output=True, text=True, check=True)
    served = json.loads(completed.stdout.strip().splitlines()[-1])
    assert served["foreign_modules"] == []
    assert served["signatures"] == ["serve_tokens", "serving_default"]
    rows = list(predict(tiny_model_dir, TEXTS))
    reference = np.array([row["probabilities"] for row in rows])
    assert_agree(served["probabilities"], reference, "int8")
    # The weights are int8 (with float scales): the variables are about a third of the
    # float32 weights (measured: 0.64 MB against 1.99 MB).
    from keras_mapping.export import artifact_bytes

    float_weights = (tiny_model_dir / "task_weights.safetensors").stat().st_size
    assert artifact_bytes(f"{artifact}/variables") < 0.5 * float_weights


@pytest.fixture(scope="module")
def image_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("quantize_images")
    images = write_image_folder(root / "colours", counts=(("train", 6), ("validation", 3)))
    model = root / "model"
    assert main(["finetune", "--preset", "resnet8", "--dataset", str(images), "--out",
                 str(model), "--epochs", "3", "--batch-size", "6", "--learning-rate", "1e-2",
                 "--dropout", "0", "--evaluations-per-epoch", "1", "--warmup-ratio", "0",
                 "--precision", "fp32", "--verbose", "0"]) == 0
    return model, sorted((images / "validation").rglob("*.*"))


def test_quantized_image_tflite_takes_pixels_and_agrees(image_model, tmp_path, capsys):
    model, paths = image_model
    pixels = np.stack([tf.image.resize(tf.image.convert_image_dtype(tf.io.decode_image(
        path.read_bytes(), channels=3, expand_animations=False), tf.float32), [16, 16])
        for path in paths])
    outputs, sizes = {}, {}
    for quantize in (None, "int8", "float16"):
        artifact, sizes[quantize] = exported(capsys, model, tmp_path / str(quantize), "tflite",
                                             quantize)
        runner = tf.lite.Interpreter(model_path=artifact).get_signature_runner()
        outputs[quantize] = runner(images=pixels)
    assert sizes["int8"] < sizes["float16"] < sizes[None]
    for quantize in ("int8", "float16"):
        assert_agree(outputs[quantize]["probabilities"], outputs[None]["probabilities"],
                     quantize)
        np.testing.assert_array_equal(outputs[quantize]["label_id"],
                                      outputs[None]["label_id"])


def test_formats_that_cannot_be_quantized_say_which_can(tiny_model_dir, image_model, tmp_path,
                                                        capsys):
    with pytest.raises(SystemExit) as exited:
        main(["export", "--model", str(tiny_model_dir), "--out", str(tmp_path / "a"),
              "--quantize", "int4"])
    assert exited.value.code == 2
    assert "invalid choice: 'int4'" in capsys.readouterr().err

    refusals = [(tiny_model_dir, "keras", "int8", "does not apply to --format keras"),
                (tiny_model_dir, "keras", "float16", "does not apply to --format keras"),
                (tiny_model_dir, "savedmodel", "float16",
                 "--quantize float16 does not apply to --format savedmodel"),
                (image_model[0], "savedmodel", "int8", "--quantize int8 does not apply to "
                 "--format savedmodel for image-classification models")]
    for index, (model, format, quantize, message) in enumerate(refusals):
        out = tmp_path / str(index)
        assert main(["export", "--model", str(model), "--out", str(out), "--format", format,
                     "--quantize", quantize]) == 2
        error = capsys.readouterr().err
        assert message in error and "--format tflite takes --quantize int8 or float16" in error
        assert not out.exists()

    # The tagger: its SavedModel is refused before anything is built (its TFLite export
    # is refused already, see tests/tasks/test_token_task.py).
    class Tagger:
        name, modality = "token-classification", "text"

    with pytest.raises(ValueError, match="savedmodel for token-classification models"):
        check_quantization("savedmodel", "int8", Tagger())
    with pytest.raises(ValueError, match="must be None or one of"):
        check_quantization("tflite", "int4")
    check_quantization("tflite", None, Tagger())
