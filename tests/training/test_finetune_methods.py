import json
from types import SimpleNamespace

import numpy as np
import pytest

from keras_mapping.tasks.model_directory import load_model_directory
from keras_mapping.checkpoints.task_weights import TASK_WEIGHTS_FILE, read_task_metadata
from keras_mapping.cli.main import main
from keras_mapping.models import BertBackbone
from keras_mapping.models.task_weights import load_task_weights
from keras_mapping.tokenizers import BertTokenizer
from keras_mapping.training import FinetuneConfig

BATCH = {"token_ids": np.array([[101, 1996, 2143, 2001, 6659, 1012, 102]]),
         "segment_ids": np.zeros((1, 7), "int32"),
         "padding_mask": np.ones((1, 7), bool)}


def finetune_cli(tiny_preset, tiny_dataset, out, *flags):
    return main(["finetune", "--preset", str(tiny_preset), "--dataset", str(tiny_dataset),
                 "--out", str(out), "--epochs", "6", "--batch-size", "16", "--dropout", "0",
                 "--evaluations-per-epoch", "1", "--max-length", "32", "--warmup-ratio", "0",
                 "--precision", "fp32", "--verbose", "0", *flags])


@pytest.mark.parametrize("method,flags", [
    ("lora", ["--lora-rank", "4", "--lora-targets", "query", "value", "intermediate"]),
    ("adapter", ["--adapter-dim", "8"]),
])
def test_method_runs_and_its_task_weights_rebuild_the_model(
        tiny_preset, tiny_dataset, tmp_path, capsys, method, flags):
    out = tmp_path / method
    assert finetune_cli(tiny_preset, tiny_dataset, out, "--method", method,
                        "--learning-rate", "1e-2", *flags) == 0
    captured = capsys.readouterr().out
    metrics = json.loads(captured.strip().splitlines()[-1])
    assert f"method {method}: {metrics['trainable_parameters']:,} of " in captured
    assert metrics["trainable_parameters"] < 0.1 * metrics["total_parameters"]
    assert metrics["accuracy"] >= 0.8, metrics

    metadata = read_task_metadata(out / TASK_WEIGHTS_FILE)
    assert metadata["base_preset"] == str(tiny_preset) and metadata["method"] == method
    # Only the trained variables travel: a few floats per trained parameter plus a header.
    size = (out / TASK_WEIGHTS_FILE).stat().st_size
    assert metrics["task_weights_bytes"] == size
    assert size < 4 * metrics["trainable_parameters"] + 20_000

    saved = load_model_directory(out).model
    rebuilt = load_task_weights(out / TASK_WEIGHTS_FILE)
    np.testing.assert_allclose(np.asarray(rebuilt(BATCH)), np.asarray(saved(BATCH)),
                               atol=1e-5)
    if method == "lora":  # saved merged: the inference model has no LoRA variables
        assert saved.backbone.peft == {}
        assert not any("lora" in v.path for v in saved.weights)


def test_task_weights_refuse_a_different_base(tiny_preset, tiny_dataset, tmp_path):
    out = tmp_path / "bitfit"
    assert finetune_cli(tiny_preset, tiny_dataset, out, "--method", "bitfit") == 0
    other = tmp_path / "other_base"
    BertBackbone(vocabulary_size=30522, num_layers=2, num_heads=2, hidden_dim=16,
                 intermediate_dim=32, max_sequence_length=64).save_to_preset(
        other, tokenizer=BertTokenizer.from_preset(tiny_preset))
    with pytest.raises(ValueError, match=r"task_weights.safetensors: these task weights were "
                                         r"trained on a base with fingerprint \w+ .*"
                                         "'.*other_base' has fingerprint"):
        load_task_weights(out / TASK_WEIGHTS_FILE, base_preset=other)
    with pytest.raises(ValueError, match="not a keras-mapping task weights file"):
        from safetensors.numpy import save_file

        save_file({"x": np.zeros(2, "float32")}, str(tmp_path / "plain.safetensors"))
        load_task_weights(tmp_path / "plain.safetensors")


@pytest.mark.parametrize("flags,message", [
    (["--method", "lora", "--lora-rank", "0"], "`lora_rank` must be a positive integer"),
    (["--method", "prefix", "--prefix-length", "-1"], "`prefix_length` must be a positive"),
    (["--method", "lora", "--gradual-unfreezing", "1"], "gradual_unfreezing"),
    (["--method", "lora", "--lora-targets", "pooler"], "`lora_targets` must be"),
])
def test_bad_method_settings_are_refused_before_anything_is_written(
        tiny_preset, tiny_dataset, tmp_path, capsys, flags, message):
    out = tmp_path / "refused"
    assert finetune_cli(tiny_preset, tiny_dataset, out, *flags) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_unknown_method_is_a_usage_error():
    with pytest.raises(ValueError, match="`method` must be one of"):
        FinetuneConfig(method="qlora")


@pytest.mark.parametrize("method", ["full", "lora", "adapter"])
def test_cli_leaves_the_method_defaults_to_the_recipe(method):
    from keras_mapping.cli.main import _config, build_parser
    from keras_mapping.training.finetune import METHOD_RECIPES

    task = SimpleNamespace(pairs=False, name="classification", default_max_length=64,
                           recipe_defaults=lambda *_: {})
    arguments = build_parser().parse_args(["finetune", "--method", method])
    # Resolved against a large training split (SST-2's size), where the method recipe holds.
    config = _config(FinetuneConfig, arguments).resolved(task, 67_349, positions=512)
    assert config.epochs == METHOD_RECIPES[method]["epochs"]
    assert config.learning_rate == METHOD_RECIPES[method]["learning_rate"]
    assert (config.batch_size, config.max_length) == (128, 64)
    overridden = _config(FinetuneConfig, build_parser().parse_args(
        ["finetune", "--method", method, "--learning-rate", "3e-4", "--epochs", "1"]))
    overridden = overridden.resolved(task, 67_349, positions=512)
    assert (overridden.learning_rate, overridden.epochs) == (3e-4, 1.0)


def test_image_tasks_resolve_their_own_recipe():
    from keras_mapping.tasks.image_classification import ImageClassificationTask

    task = ImageClassificationTask(["cat", "dog"], (32, 32))
    scratch = FinetuneConfig(preset="resnet20").resolved(task, 500, positions=None)
    assert (scratch.epochs, scratch.batch_size, scratch.learning_rate) == (100.0, 32, 1e-3)
    assert scratch.max_length is None
    pretrained = FinetuneConfig(preset="some/dir").resolved(task, 25_000, positions=None)
    assert (pretrained.epochs, pretrained.batch_size, pretrained.learning_rate) == (
        5.0, 128, 5e-4)
    probe = FinetuneConfig(preset="some/dir", method="linear-probe", epochs=3.0)
    assert (probe.resolved(task, 500, None).epochs,
            probe.resolved(task, 500, None).learning_rate) == (3.0, 1e-2)


def test_small_data_and_pairs_resolve_their_own_defaults():
    from keras_mapping.training.finetune import SMALL_DATA_RECIPE

    pairs = SimpleNamespace(pairs=True, name="classification", default_max_length=128,
                            recipe_defaults=lambda *_: {})
    config = FinetuneConfig().resolved(pairs, 2_490, positions=512)
    assert config.max_length == 128
    assert (config.batch_size, config.epochs, config.learning_rate) == (
        SMALL_DATA_RECIPE["batch_size"], SMALL_DATA_RECIPE["epochs"],
        SMALL_DATA_RECIPE["learning_rate"])
    assert FinetuneConfig().resolved(pairs, 2_490, positions=64).max_length == 64
    # What a user sets stays set; a parameter-efficient method keeps its own recipe.
    assert FinetuneConfig(batch_size=64).resolved(pairs, 2_490, 512).batch_size == 64
    assert FinetuneConfig(method="lora").resolved(pairs, 2_490, 512).learning_rate == 2e-3
    with pytest.raises(ValueError, match="tune_threshold.*multi-label"):
        FinetuneConfig(tune_threshold=True).resolved(pairs, 2_490, 512)
