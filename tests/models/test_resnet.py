import keras
import numpy as np
import pytest

from keras_mapping.models import (RESNET_ARCHITECTURES, ConvBatchNorm, ImageClassifier,
                                  ResidualBlock, ResNetBackbone, ResNetStem)
from keras_mapping.models.peft import trainable_parameters
from tests.helpers import check_float32_outputs_under_mixed_bfloat16, run_layer_test

TINY = dict(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic",
            stem="cifar")
RNG = np.random.default_rng(5)


def tiny_backbone(**overrides):
    return ResNetBackbone(**{**TINY, **overrides})


def images(count=4, size=16):
    return RNG.random((count, size, size, 3), dtype="float32")


def test_conv_batch_norm_contract(tmp_path):
    run_layer_test(ConvBatchNorm, {"filters": 4, "kernel_size": 3, "strides": 2},
                   {"inputs": images(2, 9)}, (2, 5, 5, 4), tmp_path)


def test_stem_contract(tmp_path):
    run_layer_test(ResNetStem, {"filters": 4}, {"inputs": images(2, 17)}, (2, 5, 5, 4),
                   tmp_path)


@pytest.mark.parametrize("block_type", ["basic", "bottleneck"])
def test_residual_block_contract(tmp_path, block_type):
    run_layer_test(ResidualBlock, {"filters": 8, "strides": 2, "block_type": block_type},
                   {"inputs": images(2, 8)}, (2, 4, 4, 8), tmp_path)


def test_identity_shortcut_only_when_shape_is_kept():
    same = ResidualBlock(filters=3)
    same(images(1, 4))
    changed = ResidualBlock(filters=3, strides=2)
    changed(images(1, 4))
    assert same.shortcut is None and changed.shortcut is not None


def test_bottleneck_stride_placement():
    v15 = ResidualBlock(filters=8, strides=2, block_type="bottleneck")
    v1 = ResidualBlock(filters=8, strides=2, block_type="bottleneck",
                       downsample_in_bottleneck=True)
    for block in (v15, v1):
        block(images(1, 8))
    assert [u.strides for u in v15.convolution_units] == [1, 2, 1]
    assert [u.strides for u in v1.convolution_units] == [2, 1, 1]
    assert [u.filters for u in v15.convolution_units] == [2, 2, 8]


@pytest.mark.parametrize("stem, size, expected", [("cifar", 16, 8), ("imagenet", 32, 4)])
def test_feature_map_and_pooled_average(stem, size, expected):
    outputs = tiny_backbone(stem=stem)(images(2, size))
    assert outputs["feature_map"].shape == (2, expected, expected, 16)
    np.testing.assert_allclose(outputs["pooled_output"],
                               np.mean(outputs["feature_map"], axis=(1, 2)), atol=1e-5)


def test_downsample_in_first_stage_halves_again():
    outputs = tiny_backbone(downsample_in_first_stage=True)(images(1))
    assert outputs["feature_map"].shape == (1, 4, 4, 16)


@pytest.mark.parametrize("name, classes, expected", [
    # ResNet-8 is not in the paper's table: 78,042 counted by hand (convolutions, BatchNorm
    # scales and offsets, the two projection shortcuts, the 10-class head).
    ("resnet8", 10, 78_042), ("resnet20", 10, 0.27e6), ("resnet56", 10, 0.85e6),
    ("resnet18", 1000, 11_689_512), ("resnet50", 1000, 25_557_032)])
def test_named_architecture_sizes(name, classes, expected):
    # Trainable weights, as the papers count them (BatchNorm statistics are not weights).
    model = ImageClassifier(ResNetBackbone.from_architecture(name), num_classes=classes)
    assert abs(trainable_parameters(model) / expected - 1) < 0.01


def test_named_architectures_blocks():
    for name, settings in RESNET_ARCHITECTURES.items():
        backbone = ResNetBackbone.from_architecture(name, image_size=32)
        assert len(backbone.encoder_layers) == sum(settings["depths"]) == backbone.num_layers


def test_invalid_settings():
    with pytest.raises(ValueError, match="`stem` must be one of"):
        tiny_backbone(stem="tiny")
    with pytest.raises(ValueError, match="one entry per stage"):
        tiny_backbone(depths=[1])
    with pytest.raises(ValueError, match="`layer_type` must be one of"):
        tiny_backbone(layer_type="wide")


def test_frozen_blocks_keep_weights_and_statistics_during_fit():
    model = ImageClassifier(tiny_backbone(), num_classes=2)
    model.backbone.freeze(embeddings=True, num_layers=1)
    frozen = model.backbone.embeddings.weights + model.backbone.encoder_layers[0].weights
    trained = model.backbone.encoder_layers[1].weights
    before = [np.array(v) for v in frozen + trained]
    pixels = images(8)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit(pixels, np.arange(8) % 2, batch_size=8, epochs=1, verbose=0)
    after = [np.array(v) for v in frozen + trained]
    assert all(np.array_equal(b, a) for b, a in zip(before[:len(frozen)], after))
    assert not all(np.array_equal(b, a) for b, a in zip(before[len(frozen):],
                                                         after[len(frozen):]))


def test_classifier_fit_lowers_loss():
    labels = np.arange(32) % 2
    pixels = (RNG.random((32, 16, 16, 3)) * 0.5 + 0.5 * labels[:, None, None, None])
    model = ImageClassifier(tiny_backbone(), num_classes=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    losses = model.fit(pixels.astype("float32"), labels, batch_size=32, epochs=5,
                       verbose=0).history["loss"]
    assert losses[-1] < losses[0]


def test_classifier_keras_round_trip(tmp_path):
    model = ImageClassifier(tiny_backbone(stem="imagenet", layer_type="bottleneck",
                                          hidden_sizes=[8, 16]), num_classes=3)
    model.compile()
    model.fit(images(8, 32), np.arange(8) % 3, epochs=1, verbose=0)  # moves BN statistics
    path = tmp_path / "resnet.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.get_config() == model.get_config()
    batch = images(2, 32)
    np.testing.assert_allclose(reloaded(batch), model(batch), atol=1e-5)


def test_mixed_bfloat16_gives_float32_logits():
    check_float32_outputs_under_mixed_bfloat16(
        lambda: ImageClassifier(tiny_backbone(), num_classes=3), images())
