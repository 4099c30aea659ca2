import keras
import numpy as np
import pytest

from keras_mapping.models import VIT_ARCHITECTURES, ImageClassifier, ViTBackbone
from keras_mapping.models.peft import (merge_lora, peft_options, select_trainable,
                                       trainable_parameters)
from keras_mapping.training.optimizers import layerwise_factors
from tests.helpers import check_float32_outputs_under_mixed_bfloat16

TINY = dict(image_size=16, patch_size=4, num_layers=2, num_heads=2, hidden_dim=16,
            intermediate_dim=32)
RNG = np.random.default_rng(11)


def tiny_backbone(**overrides):
    return ViTBackbone(**{**TINY, **overrides})


def images(count=4, size=16):
    return RNG.random((count, size, size, 3), dtype="float32")


def separable_data(count=32):
    """Images whose class is whether they are bright or dark."""
    labels = np.arange(count) % 2
    pixels = RNG.random((count, 16, 16, 3), dtype="float32") * 0.5 + 0.5 * labels[:, None,
                                                                                    None, None]
    return pixels.astype("float32"), labels


def test_outputs_and_pooled_class_token():
    outputs = tiny_backbone()(images())
    assert outputs["sequence_output"].shape == (4, 17, 16)
    assert outputs["encoder_output"].shape == (4, 17, 16)
    np.testing.assert_allclose(outputs["pooled_output"], outputs["sequence_output"][:, 0])


def test_final_layer_norm_separates_encoder_and_sequence_outputs():
    backbone = tiny_backbone()
    outputs = backbone(images())
    expected = backbone.final_layer_norm(outputs["encoder_output"])
    np.testing.assert_allclose(outputs["sequence_output"], expected, atol=1e-6)


def test_blocks_are_pre_norm_encoders():
    backbone = tiny_backbone()
    assert all(block.norm_first for block in backbone.encoder_layers)
    assert len(backbone.encoder_layers) == 2


def test_non_square_images_and_patches():
    backbone = tiny_backbone(image_size=(12, 20), patch_size=(4, 5))
    assert backbone(RNG.random((1, 12, 20, 3), dtype="float32"))["sequence_output"].shape == (
        1, 13, 16)


@pytest.mark.parametrize("name", sorted(VIT_ARCHITECTURES))
def test_named_architectures(name):
    expected = VIT_ARCHITECTURES[name]
    backbone = ViTBackbone.from_architecture(name, image_size=32, num_layers=1)
    assert (backbone.hidden_dim, backbone.num_heads, backbone.intermediate_dim,
            backbone.patch_size) == (expected["hidden_dim"], expected["num_heads"],
                                     expected["intermediate_dim"],
                                     4 if name == "vit_cifar" else 16)
    assert VIT_ARCHITECTURES[name]["num_layers"] == (6 if name == "vit_cifar" else 12)


def test_vit_base_parameter_count():
    # ViT-B/16 at 224 with a 1000-class head: 86.57M (Dosovitskiy et al.: "86M").
    model = ImageClassifier(ViTBackbone.from_architecture("vit_base"), num_classes=1000)
    assert abs(model.count_params() / 86_567_656 - 1) < 0.01


def test_unknown_architecture():
    with pytest.raises(ValueError, match="Unknown architecture 'vit_huge'.*vit_base"):
        ViTBackbone.from_architecture("vit_huge")


def test_patch_larger_than_image():
    with pytest.raises(ValueError, match="larger than `image_size`"):
        tiny_backbone(patch_size=32)


def test_freezing_embeddings_and_lowest_blocks():
    backbone = tiny_backbone()
    total = trainable_parameters(backbone)
    backbone.freeze(embeddings=True, num_layers=1)
    assert [block.trainable for block in backbone.encoder_layers] == [False, True]
    frozen = {v.path for v in backbone.weights} - {v.path for v in backbone.trainable_weights}
    assert any(path.startswith("embeddings/") for path in frozen)
    assert trainable_parameters(backbone) < total
    backbone.freeze()
    assert trainable_parameters(backbone) == total
    with pytest.raises(ValueError, match="between 0 and 2"):
        backbone.freeze(num_layers=3)


def test_layerwise_learning_rates_reach_blocks_and_embeddings():
    factors = layerwise_factors(tiny_backbone(), 0.5, 2)
    assert factors["encoder_layer_1/attention/query/kernel"] == 1.0
    assert factors["encoder_layer_0/attention/query/kernel"] == 0.5
    assert factors["embeddings/patch_embedding/projection/kernel"] == 0.25
    assert factors["embeddings/class_token_and_positions/class_token"] == 0.25


def test_attention_scores_per_block():
    scores = tiny_backbone().attention_scores(images(2))
    assert [tuple(s.shape) for s in scores] == [(2, 2, 17, 17)] * 2


def test_classifier_fit_lowers_loss():
    pixels, labels = separable_data()
    model = ImageClassifier(tiny_backbone(), num_classes=2)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    losses = model.fit(pixels, labels, batch_size=32, epochs=5, verbose=0).history["loss"]
    assert losses[-1] < losses[0]


def test_classifier_keras_round_trip(tmp_path):
    model = ImageClassifier(tiny_backbone(dropout=0.1), num_classes=3, dropout=0.2)
    path = tmp_path / "vit.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.get_config() == model.get_config()
    batch = images()
    np.testing.assert_allclose(reloaded(batch), model(batch), atol=1e-6)


def test_mixed_bfloat16_gives_float32_logits():
    check_float32_outputs_under_mixed_bfloat16(
        lambda: ImageClassifier(tiny_backbone(), num_classes=3), images())


def test_lora_trains_only_updates_and_head():
    pixels, labels = separable_data(16)
    backbone = tiny_backbone(peft=peft_options("lora", lora_rank=2))
    model = ImageClassifier(backbone, num_classes=2)
    select_trainable(model, "lora")
    trainable = {v.path for v in model.trainable_weights}
    assert trainable and all("_lora/" in path or path.startswith("logits/")
                             for path in trainable)
    # 2 blocks x 4 attention projections x rank 2 x (16 in + 16 out), and the 16 x 2 + 2 head.
    assert trainable_parameters(model) == 2 * 4 * 2 * 32 + 34
    before = {v.path: np.array(v) for v in model.weights}
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(pixels, labels, batch_size=8, epochs=1, verbose=0)
    changed = {v.path for v in model.weights if not np.array_equal(before[v.path], v)}
    assert changed and changed <= trainable
    merged = merge_lora(model)
    assert merged.backbone.get_config()["peft"] is None
    np.testing.assert_allclose(merged(pixels), model(pixels), atol=1e-5)
