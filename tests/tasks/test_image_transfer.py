"""Transfer between image tasks through the CLI on tiny colour images: a fine-tuned model
directory is itself a preset (`DIR/preset/` in the Hugging Face layout) that the next
`finetune --preset DIR` starts from; a linear probe trains the head alone; LoRA on a ViT;
self-supervised `pretrain-images` (SimCLR) whose output directory is a preset too, and
which resumes exactly when killed; its views and its errors."""

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_mapping.checkpoints import vision_layout
from keras_mapping.cli.main import main
from keras_mapping.data.image_views import (contrastive_image_dataset, simclr_view,
                                            unlabeled_images)
from keras_mapping.tasks.model_directory import load_model_directory
from tests.helpers import QUIET, cli_json, killed_then_resumed, write_image_folder

TINY = ["--epochs", "2", "--batch-size", "6", "--learning-rate", "1e-2", "--dropout", "0",
        "--evaluations-per-epoch", "1", "--warmup-ratio", "0", "--precision", "fp32",
        "--verbose", "0"]
TINY_SIMCLR = ["--epochs", "2", "--batch-size", "4", "--rounds", "2", "--image-size", "16",
               "--validation-share", "0.25", "--precision", "fp32", "--verbose", "0"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("images") / "colours")


def backbone_weights(model_dir):
    return load_model_directory(model_dir).model.backbone.get_weights()


def test_a_model_directory_is_a_preset_and_a_linear_probe_keeps_its_backbone(
        images, tmp_path, capsys):
    source = tmp_path / "source"
    cli_json(capsys, "finetune", "--preset", "resnet8", "--dataset", images, "--out", source,
             *TINY)
    config = json.loads((source / "preset" / vision_layout.CONFIG_FILE).read_text())
    assert config["architectures"] == ["ResNetForImageClassification"]
    assert config["id2label"] == {"0": "blue", "1": "green", "2": "red"}
    assert vision_layout.read_preprocessing(source / "preset")["image_size"] == (16, 16)

    probe = tmp_path / "probe"
    trained = cli_json(capsys, "finetune", "--preset", source, "--dataset", images, "--out",
                       probe, "--method", "linear-probe", *TINY)[-1]
    assert trained["trainable_parameters"] == 64 * 3 + 3  # the head alone
    # Frozen whole: weights and BatchNorm statistics are the source's, to the bit.
    for before, after in zip(backbone_weights(source), backbone_weights(probe)):
        np.testing.assert_array_equal(before, after)

    full = tmp_path / "full"
    cli_json(capsys, "finetune", "--preset", source, "--dataset", images, "--out", full, *TINY)
    changed = [not np.array_equal(a, b)
               for a, b in zip(backbone_weights(source), backbone_weights(full))]
    assert any(changed)


def test_lora_on_a_vit_trains_the_updates_and_saves_them_merged(images, tmp_path, capsys):
    from keras_mapping.models import ViTBackbone

    preset = tmp_path / "vit"
    ViTBackbone(image_size=16, patch_size=4, num_layers=2, num_heads=2, hidden_dim=16,
                intermediate_dim=32).save_to_preset(preset)
    model = tmp_path / "model"
    trained = cli_json(capsys, "finetune", "--preset", preset, "--dataset", images, "--out",
                       model, "--method", "lora", "--lora-rank", "2", *TINY)[-1]
    # finetune's LoRA targets every projection: per block, rank 2 x (16 + 16) for each of
    # the 4 attention ones and 2 x (16 + 32) for each of the 2 feed-forward ones; the head
    assert trained["trainable_parameters"] == 2 * (4 * 2 * 32 + 2 * 2 * 48) + 16 * 3 + 3
    evaluated = cli_json(capsys, "evaluate", "--model", model, "--dataset", images)[-1]
    assert evaluated["accuracy"] == pytest.approx(trained["accuracy"])
    bundle = load_model_directory(model)
    assert bundle.model.backbone.get_config()["peft"] is None  # merged
    again = cli_json(capsys, "finetune", "--preset", model, "--dataset", images, "--out",
                     tmp_path / "again", "--method", "linear-probe", *TINY)[-1]
    assert again["trainable_parameters"] == 16 * 3 + 3


def test_pretrain_images_leaves_a_preset_that_finetune_reads(images, tmp_path, capsys):
    out = tmp_path / "simclr"
    metrics = cli_json(capsys, "pretrain-images", "--images", images / "train",
                       "--preset", "resnet8", "--out", out, *TINY_SIMCLR)[-1]
    assert metrics["views"] == 2 * 4  # 18 images: 4 held out, one batch of 4
    assert 0 <= metrics["retrieval_accuracy"] <= 1 and np.isfinite(metrics["contrastive_loss"])
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [
        "config.json", "metrics.json", "model.safetensors", "preprocessor_config.json",
        "training_config.json"]
    target = tmp_path / "target"
    trained = cli_json(capsys, "finetune", "--preset", out, "--dataset", images, "--out",
                       target, "--method", "linear-probe", *TINY)[-1]
    assert trained["trainable_parameters"] == 64 * 3 + 3
    assert main(["pretrain-images", "--images", str(images / "train"), "--preset", "resnet8",
                 "--out", str(out), *TINY_SIMCLR]) == 2
    assert "already holds a finished run" in capsys.readouterr().err


def test_a_killed_pretrain_images_run_resumes_to_the_same_weights(images, tmp_path):
    from keras_mapping.models import ResNetBackbone
    from keras_mapping.training.image_pretrain import ImagePretrainConfig, pretrain_images

    config = dict(images=str(images / "train"), preset="resnet8", image_size=16, epochs=2,
                  batch_size=4, rounds=2, checkpoint_every=1, validation_share=0.25,
                  precision="fp32")
    straight = pretrain_images(ImagePretrainConfig(out=str(tmp_path / "a"), **config), **QUIET)

    resumed = killed_then_resumed(
        pretrain_images, ImagePretrainConfig(out=str(tmp_path / "b"), **config), at_step=3)
    assert resumed["retrieval_accuracy"] == straight["retrieval_accuracy"]
    for a, b in zip(ResNetBackbone.from_preset(tmp_path / "a").get_weights(),
                    ResNetBackbone.from_preset(tmp_path / "b").get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_views_are_seeded_and_differ_between_seeds():
    image = tf.random.stateless_uniform([16, 16, 3], [1, 2])
    first = simclr_view(image, tf.constant([0, 1], tf.int64))
    again = simclr_view(image, tf.constant([0, 1], tf.int64))
    other = simclr_view(image, tf.constant([0, 2], tf.int64))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert float(tf.reduce_min(first)) >= 0 and float(tf.reduce_max(first)) <= 1


def test_contrastive_batches_are_full_with_both_directions_as_targets(images):
    files = unlabeled_images(images)  # train/ and validation/ class folders alike
    assert len(files) == 27
    batches = list(contrastive_image_dataset(files, (8, 8), 4, (0.5,) * 3, (0.5,) * 3, seed=3))
    assert len(batches) == 6  # 27 // 4: the partial batch is dropped
    views, targets = batches[0]
    assert views["view_1"].shape == (4, 8, 8, 3) and views["view_2"].shape == (4, 8, 8, 3)
    assert targets.numpy().tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    again = next(iter(contrastive_image_dataset(files, (8, 8), 4, (0.5,) * 3, (0.5,) * 3,
                                                seed=3)))
    np.testing.assert_array_equal(views["view_2"], again[0]["view_2"])


def test_unlabeled_image_errors_name_the_folder_or_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        unlabeled_images(tmp_path / "nowhere")
    (tmp_path / "empty" / "class").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    with pytest.raises(ValueError, match="holds no .jpg/.jpeg/.png file"):
        unlabeled_images(tmp_path / "empty")
    broken = tmp_path / "empty" / "class" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really")
    with pytest.raises(ValueError, match="broken.jpg"):
        unlabeled_images(tmp_path / "empty")
    assert len(unlabeled_images(tmp_path / "empty", on_bad_image="skip").skipped) == 1


def test_task_weights_of_a_fine_tuned_resnet_rebuild_it_with_its_batchnorm_statistics(
        images, tmp_path, capsys):
    from keras_mapping.checkpoints.task_weights import TASK_WEIGHTS_FILE
    from keras_mapping.models.task_weights import load_task_weights

    source = tmp_path / "source"
    cli_json(capsys, "finetune", "--preset", "resnet8", "--dataset", images, "--out", source,
             *TINY)
    with pytest.raises(ValueError, match="random weights of 'resnet8'.*model directory"):
        load_task_weights(source / TASK_WEIGHTS_FILE)
    target = tmp_path / "target"
    cli_json(capsys, "finetune", "--preset", source, "--dataset", images, "--out", target,
             *TINY)
    pixels = np.random.default_rng(3).random((2, 16, 16, 3), dtype="float32")
    rebuilt = load_task_weights(target / TASK_WEIGHTS_FILE)
    saved = load_model_directory(target).model
    np.testing.assert_allclose(rebuilt(pixels), saved(pixels), atol=1e-5)
