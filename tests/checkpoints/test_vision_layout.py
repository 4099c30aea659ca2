import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from keras_mapping.models import ImageClassifier, ResNetBackbone, ViTBackbone

RNG = np.random.default_rng(17)


@pytest.fixture
def vision(shared):
    directory = shared / "fixtures" / "vision"
    data = np.load(directory / "vision_reference.npz")
    return directory, {name: data[name] for name in data.files}


def max_error(actual, expected):
    return float(np.max(np.abs(np.asarray(actual) - expected)))


def images(count=2, height=24, width=24):
    return RNG.random((count, height, width, 3), dtype="float32")


def test_vit_matches_pytorch_reference(vision):
    directory, reference = vision
    model = ImageClassifier.from_preset(directory / "vit_tiny_random")
    pixels = reference["images_nhwc"]
    encoder_output = model.backbone(pixels)["encoder_output"]
    assert max_error(encoder_output, reference["vit_encoder_output"]) <= 1e-4
    assert max_error(model(pixels), reference["vit_logits"]) <= 1e-4
    backbone = ViTBackbone.from_preset(directory / "vit_tiny_random")
    assert max_error(backbone(pixels)["encoder_output"], reference["vit_encoder_output"]) <= 1e-4


def test_resnet_matches_pytorch_reference(vision):
    directory, reference = vision
    model = ImageClassifier.from_preset(directory / "resnet_tiny_random")
    pixels = reference["images_nhwc"]
    assert max_error(model.backbone(pixels)["pooled_output"], reference["resnet_pooled"]) <= 1e-4
    assert max_error(model(pixels), reference["resnet_logits"]) <= 1e-4
    backbone = ResNetBackbone.from_preset(directory / "resnet_tiny_random")
    assert max_error(backbone(pixels)["pooled_output"], reference["resnet_pooled"]) <= 1e-4


@pytest.mark.parametrize("name", ["vit_tiny_random", "resnet_tiny_random"])
def test_saved_classifier_has_the_reference_tensors_and_labels(vision, tmp_path, name):
    directory, reference = vision
    model = ImageClassifier.from_preset(directory / name)
    saved = model.save_to_preset(tmp_path / name, labels=[f"LABEL_{i}" for i in range(10)])
    original = load_file(str(directory / name / "model.safetensors"))
    written = load_file(str(saved / "model.safetensors"))
    assert {k: v.shape for k, v in written.items()} == {k: v.shape for k, v in original.items()}
    for key, value in original.items():
        if not key.endswith("num_batches_tracked"):
            np.testing.assert_allclose(written[key], value, atol=0, rtol=0)
    config = json.loads((saved / "config.json").read_text())
    expected = json.loads((directory / name / "config.json").read_text())
    for key in ("architectures", "model_type", "id2label", "label2id"):
        assert config[key] == expected[key]
    reloaded = ImageClassifier.from_preset(saved)
    np.testing.assert_allclose(reloaded(reference["images_nhwc"]), model(reference["images_nhwc"]),
                               atol=1e-6)


VIT_VARIANTS = [
    dict(image_size=24, patch_size=6, num_layers=1, num_heads=3, hidden_dim=12,
         intermediate_dim=20),
    dict(image_size=(16, 24), patch_size=(4, 8), num_layers=3, num_heads=1, hidden_dim=8,
         intermediate_dim=8, activation="keras_mapping>gelu_approximate",
         layer_norm_epsilon=1e-6),
]
RESNET_VARIANTS = [
    dict(embedding_size=8, hidden_sizes=[16, 24], depths=[2, 1], layer_type="bottleneck",
         downsample_in_first_stage=True, downsample_in_bottleneck=True),
    dict(embedding_size=4, hidden_sizes=[4, 8, 8], depths=[1, 2, 1], layer_type="basic",
         stem="cifar"),
]


def randomize_batch_norm_statistics(backbone):
    for variable in backbone.weights:
        if "moving_" in variable.path:
            variable.assign(RNG.random(variable.shape).astype("float32") + 0.5)


@pytest.mark.parametrize("settings", VIT_VARIANTS + RESNET_VARIANTS)
def test_other_configurations_round_trip(tmp_path, settings):
    backbone_class = ViTBackbone if "patch_size" in settings else ResNetBackbone
    backbone = backbone_class(**settings)
    randomize_batch_norm_statistics(backbone)
    model = ImageClassifier(backbone, num_classes=3)
    height, width = ((settings["image_size"],) * 2 if isinstance(settings.get("image_size"), int)
                     else settings.get("image_size", (24, 24)))
    pixels = images(2, height, width)
    reloaded = ImageClassifier.from_preset(model.save_to_preset(tmp_path / "model"))
    assert type(reloaded.backbone) is backbone_class
    np.testing.assert_allclose(reloaded(pixels), model(pixels), atol=1e-6)
    base = backbone_class.from_preset(backbone.save_to_preset(tmp_path / "base"))
    np.testing.assert_allclose(base(pixels)["pooled_output"], backbone(pixels)["pooled_output"],
                               atol=1e-6)


def test_base_model_directory_needs_num_classes(tmp_path):
    backbone = ResNetBackbone(**RESNET_VARIANTS[1])
    directory = backbone.save_to_preset(tmp_path / "base")
    names = load_file(str(directory / "model.safetensors"))
    assert "embedder.embedder.convolution.weight" in names  # base models have no prefix
    assert json.loads((directory / "config.json").read_text())["architectures"] == [
        "ResNetModel"]
    with pytest.raises(ValueError, match="holds no classifier head; pass `num_classes`"):
        ImageClassifier.from_preset(directory)
    model = ImageClassifier.from_preset(directory, num_classes=4)
    pixels = images()
    np.testing.assert_allclose(model.backbone(pixels)["pooled_output"],
                               backbone(pixels)["pooled_output"], atol=1e-6)


def test_vit_without_qkv_biases_loads_zeros(tmp_path):
    backbone = ViTBackbone(**VIT_VARIANTS[0])
    directory = backbone.save_to_preset(tmp_path / "vit")
    tensors = load_file(str(directory / "model.safetensors"))
    save_file({k: v for k, v in tensors.items()
               if not (".attention.attention." in k and k.endswith(".bias"))},
              str(directory / "model.safetensors"))
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "qkv_bias": False}))
    reloaded = ViTBackbone.from_preset(directory)
    attention = reloaded.encoder_layers[0].attention_layer
    assert not np.any(np.asarray(attention.query_dense.bias))
    np.testing.assert_allclose(attention.query_dense.kernel, backbone.encoder_layers[0]
                               .attention_layer.query_dense.kernel)


@pytest.fixture
def saved_vit(tmp_path):
    return ViTBackbone(**VIT_VARIANTS[0]).save_to_preset(tmp_path / "vit")


def test_missing_directory_and_files(tmp_path, saved_vit):
    with pytest.raises(FileNotFoundError, match="does not exist; pass a directory in the "
                                                "Hugging Face layout holding config.json"):
        ViTBackbone.from_preset(tmp_path / "absent")
    (saved_vit / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="is missing model.safetensors"):
        ImageClassifier.from_preset(saved_vit)
    assert ViTBackbone.from_preset(saved_vit, load_weights=False).num_layers == 1


def test_unknown_model_type(saved_vit):
    config = json.loads((saved_vit / "config.json").read_text())
    (saved_vit / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    with pytest.raises(ValueError, match="config.json: model_type 'bert' is not an image "
                                         "model.*'vit' or 'resnet'"):
        ImageClassifier.from_preset(saved_vit)


def test_wrong_family_for_backbone(saved_vit):
    with pytest.raises(ValueError, match="model_type 'vit' is not a ResNetBackbone"):
        ResNetBackbone.from_preset(saved_vit)


def test_invalid_json(saved_vit):
    (saved_vit / "config.json").write_text('{"model_type": "vit",\n oops}')
    with pytest.raises(ValueError, match="config.json: line 2: not valid JSON"):
        ViTBackbone.from_preset(saved_vit)


def test_mismatched_and_missing_tensors(saved_vit, tmp_path):
    config = json.loads((saved_vit / "config.json").read_text())
    (saved_vit / "config.json").write_text(json.dumps({**config, "hidden_size": 24}))
    with pytest.raises(ValueError, match=r"tensor 'embeddings.patch_embeddings.projection."
                                         r"weight' has shape \(12, 3, 6, 6\), but the model "
                                         r"built from config.json needs \(24, 3, 6, 6\)"):
        ViTBackbone.from_preset(saved_vit)
    copy = shutil.copytree(saved_vit, tmp_path / "copy")
    (copy / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 2}))
    # 16 per block, less the optional query, key and value biases.
    with pytest.raises(ValueError, match=r"missing 13 tensor\(s\) the model needs: "
                                         r"encoder.layer.1."):
        ViTBackbone.from_preset(copy)


def test_unsupported_settings(saved_vit):
    config = json.loads((saved_vit / "config.json").read_text())
    (saved_vit / "config.json").write_text(json.dumps({**config, "hidden_act": "mish"}))
    with pytest.raises(ValueError, match="hidden_act='mish' is not supported"):
        ViTBackbone.from_preset(saved_vit)


@pytest.mark.parametrize("load", [ImageClassifier.from_preset, ViTBackbone.from_preset])
def test_corrupt_weights_file(saved_vit, load):
    weights = saved_vit / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match="model.safetensors: not a readable safetensors file"):
        load(saved_vit)


def test_imagenet_names_resolve_through_the_hub_and_say_what_to_do_offline(
        vision, monkeypatch):
    """A checkpoint name downloads its Hugging Face-layout files (here a stand-in hub that
    serves the fixture), as the BERT presets do; without the network the error says how to
    pass a directory instead."""
    import huggingface_hub

    directory, reference = vision
    asked = []

    def fake_hub(repo_id, allow_patterns):
        asked.append((repo_id, sorted(allow_patterns)))
        return str(directory / "vit_tiny_random")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_hub)
    model = ImageClassifier.from_preset("vit_base_patch16_224")
    assert asked == [("google/vit-base-patch16-224",
                      ["config.json", "model.safetensors", "preprocessor_config.json"])]
    assert max_error(model(reference["images_nhwc"]), reference["vit_logits"]) <= 1e-4

    def offline(repo_id, allow_patterns):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(FileNotFoundError, match="resnet-50.*Download it where you have "
                                                "network access and pass its directory"):
        ResNetBackbone.from_preset("resnet50_imagenet")
