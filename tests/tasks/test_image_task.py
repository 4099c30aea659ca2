"""Image classification end to end through the CLI on tiny colour images: finetune (with an
unreadable image skipped and counted) -> evaluate -> predict on image files -> export
(SavedModel, .keras, TFLite) -> a fresh process serves the image bytes and agrees with
predict. Also: a pretrained ViT directory's preprocessing is the one stored, a text
preset on images stops with a clear error, and a killed run resumes exactly."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_mapping.cli.main import main
from tests.helpers import QUIET, assert_same_weights, cli_json, killed_then_resumed, write_image_folder

TINY = ["--epochs", "3", "--batch-size", "6", "--learning-rate", "1e-2", "--dropout", "0",
        "--evaluations-per-epoch", "1", "--warmup-ratio", "0", "--precision", "fp32",
        "--verbose", "0"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = write_image_folder(tmp_path_factory.mktemp("images") / "colours",
                              counts=(("train", 6), ("validation", 3), ("test", 2)))
    (root / "train" / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return root


FRESH_PROCESS = textwrap.dedent("""
    import json, sys
    import numpy as np, tensorflow as tf
    exports, paths = json.loads(sys.argv[1])
    encoded = [open(path, "rb").read() for path in paths]
    served = tf.saved_model.load(exports["savedmodel"]).signatures["serving_default"](
        image_bytes=tf.constant(encoded))
    out = {"savedmodel": served["probabilities"].numpy().tolist(),
           "labels": [label.decode() for label in served["label"].numpy()]}
    # TFLite takes pixels: decoded and resized as the model's own graph does.
    pixels = [tf.image.resize(tf.image.convert_image_dtype(tf.io.decode_image(
        e, channels=3, expand_animations=False), tf.float32), [16, 16]) for e in encoded]
    lite = tf.lite.Interpreter(model_path=exports["tflite"]).get_signature_runner()
    out["tflite"] = lite(images=np.stack(pixels))["probabilities"].tolist()
    import keras, keras_mapping  # noqa: F401  (the .keras file needs our layers)
    model = keras.saving.load_model(exports["keras"])
    out["keras"] = np.asarray(model.predict(tf.constant(encoded), verbose=0)).tolist()
    print(json.dumps(out))
""")


def test_image_classification_end_to_end(images, tmp_path, capsys):
    model = tmp_path / "model"
    trained = cli_json(capsys, "finetune", "--preset", "resnet8", "--dataset", images,
                       "--out", model, "--skip-bad-images", *TINY)[-1]
    assert trained["skipped_train_images"] == 1 and trained["skipped_validation_images"] == 0
    stored = json.loads((model / "task.json").read_text())
    assert stored["task"] == "image-classification"
    assert stored["class_names"] == ["blue", "green", "red"] and stored["image_size"] == [16, 16]
    assert not (model / "vocab.txt").exists()
    evaluated = cli_json(capsys, "evaluate", "--model", model, "--dataset", images)[-1]
    assert evaluated["accuracy"] == pytest.approx(trained["accuracy"])
    assert evaluated["num_examples"] == 9 and evaluated["task"] == "image-classification"
    tested = cli_json(capsys, "evaluate", "--model", model, "--dataset", images, "--split",
                      "test")[-1]
    assert tested["num_examples"] == 6
    paths = [str(images / "test" / name / "0.jpg") for name in ("red", "blue")] + \
        [str(images / "test" / "green" / "1.png")]
    predicted = cli_json(capsys, "predict", "--model", model, *paths)
    assert [row["image"] for row in predicted] == paths
    assert main(["predict", "--model", str(model), str(images / "train/red/broken.png")]) == 2
    assert "broken.png" in capsys.readouterr().err
    assert main(["plot", "--kind", "confusion", "--model", str(model), "--out",
                 str(tmp_path / "confusion.png")]) == 0
    exports = {format: cli_json(capsys, "export", "--model", model, "--out", tmp_path / format,
                                "--format", format)[-1]["artifact"]
               for format in ("savedmodel", "keras", "tflite")}
    completed = subprocess.run([sys.executable, "-c", FRESH_PROCESS,
                                json.dumps([exports, paths])],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    served = json.loads(completed.stdout.splitlines()[-1])
    expected = np.array([row["probabilities"] for row in predicted])
    assert served["labels"] == [row["label"] for row in predicted]
    for format in ("savedmodel", "keras", "tflite"):
        np.testing.assert_allclose(served[format], expected, atol=1e-5, err_msg=format)


def test_a_vit_directory_brings_its_preprocessing(images, tmp_path, capsys):
    from keras_mapping.models import ViTBackbone

    keras.utils.set_random_seed(7)
    preset = tmp_path / "vit"
    ViTBackbone(image_size=16, patch_size=8, num_layers=1, num_heads=2, hidden_dim=16,
                intermediate_dim=32).save_to_preset(preset)
    (preset / "preprocessor_config.json").write_text(json.dumps(
        {"image_mean": [0.4, 0.5, 0.6], "image_std": [0.2, 0.25, 0.3]}))
    model = tmp_path / "model"
    trained = cli_json(capsys, "finetune", "--preset", preset, "--dataset", images, "--out",
                       model, "--skip-bad-images", "--method", "bitfit", *TINY)[-1]
    assert trained["trainable_parameters"] < trained["total_parameters"]
    stored = json.loads((model / "task.json").read_text())
    assert stored["mean"] == [0.4, 0.5, 0.6] and stored["std"] == [0.2, 0.25, 0.3]
    assert main(["finetune", "--preset", str(preset), "--dataset", str(images), "--out",
                 str(tmp_path / "never"), "--skip-bad-images", "--image-size", "32",
                 *TINY]) == 2
    assert "takes 16x16 images" in capsys.readouterr().err
    assert main(["finetune", "--dataset", str(images), "--out", str(tmp_path / "never"),
                 *TINY]) == 2
    assert "'minilm_l6' is neither an image architecture" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_a_killed_image_run_resumes_to_the_same_weights(images, tiny_resnet_preset,
                                                        tmp_path):
    """Augmented batches come from the seed and each image's place in the stream, so a run
    killed midway and started again trains on the same pixels as an uninterrupted one."""
    from keras_mapping.training import FinetuneConfig, finetune

    config = dict(preset=str(tiny_resnet_preset), dataset=str(images), epochs=2, batch_size=6,
                  learning_rate=1e-2, dropout=0.0, evaluations_per_epoch=1, warmup_ratio=0.0,
                  precision="fp32", checkpoint_every=2, deterministic=True,
                  skip_bad_images=True)
    straight = finetune(FinetuneConfig(out=str(tmp_path / "straight"), **config), **QUIET)

    resumed = killed_then_resumed(
        finetune, FinetuneConfig(out=str(tmp_path / "resumed"), **config), at_step=4)
    assert resumed["accuracy"] == straight["accuracy"]
    assert_same_weights(tmp_path / "straight", tmp_path / "resumed")
