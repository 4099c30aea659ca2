"""ResNet in the Hugging Face layout (`ResNetModel`, `ResNetForImageClassification`):
config.json keys and tensor names of a `ResNetBackbone`.

Only the attributes of the backbone named in `weight_map` are used; nothing here imports
`keras_mapping.models`.
"""

import numpy as np

from keras_mapping.checkpoints.tensor_mapping import convolution, reshaped

MODEL_TYPE = "resnet"
PREFIX = "resnet."  # tensors of the encoder inside a classifier checkpoint
HEAD = "classifier.1"  # the reference head is Sequential(Flatten, Linear)
BASE_ARCHITECTURE = "ResNetModel"
CLASSIFIER_ARCHITECTURE = "ResNetForImageClassification"

# Backbone constructor argument <- the config.json key for it.
CONFIG_JSON_KEYS = {
    "num_channels": "num_channels",
    "embedding_size": "embedding_size",
    "hidden_sizes": "hidden_sizes",
    "depths": "depths",
    "layer_type": "layer_type",
    "downsample_in_first_stage": "downsample_in_first_stage",
    "downsample_in_bottleneck": "downsample_in_bottleneck",
}
# What a config.json means when it leaves a key out (the reference ResNetConfig's defaults).
CONFIG_JSON_DEFAULTS = {
    "num_channels": 3, "embedding_size": 64, "hidden_sizes": [256, 512, 1024, 2048],
    "depths": [3, 4, 6, 3], "layer_type": "bottleneck", "hidden_act": "relu",
    "downsample_in_first_stage": False, "downsample_in_bottleneck": False,
}
# The reference ResNet always has the ImageNet stem (7x7 stride-2 convolution, max-pool).
# A backbone with another stem records it under this key, which only our reader honours:
# other tools would build the ImageNet stem and fail on its kernel's shape.
STEM_KEY = "keras_mapping_stem"
ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "silu": "silu", "swish": "silu",
               "tanh": "tanh", "sigmoid": "sigmoid"}
BATCH_NORM_TENSORS = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
                      "running_var": "moving_variance"}


def from_config_json(config, path):
    """`ResNetBackbone` constructor arguments from a parsed ResNet `config.json`.

    Raises:
        ValueError: a setting has no equivalent in our backbone; the message names `path`.

    Example:
    >>> from_config_json({"hidden_sizes": [16, 32], "depths": [1, 1], "layer_type": "basic"},
    ...                  "config.json")["embedding_size"]
    64
    """
    config = {**CONFIG_JSON_DEFAULTS, **config}
    if config["hidden_act"] not in ACTIVATIONS:
        raise ValueError(f"{path}: hidden_act={config['hidden_act']!r} is not supported; "
                         f"expected one of {sorted(ACTIVATIONS)}.")
    if config["layer_type"] not in ("basic", "bottleneck"):
        raise ValueError(f"{path}: layer_type={config['layer_type']!r} is not supported; "
                         "expected 'basic' or 'bottleneck'.")
    if len(config["hidden_sizes"]) != len(config["depths"]):
        raise ValueError(f"{path}: hidden_sizes {config['hidden_sizes']} and depths "
                         f"{config['depths']} must have one entry per stage each.")
    arguments = {name: config[key] for name, key in CONFIG_JSON_KEYS.items()}
    arguments["hidden_sizes"] = list(arguments["hidden_sizes"])
    arguments["depths"] = list(arguments["depths"])
    arguments["activation"] = ACTIVATIONS[config["hidden_act"]]
    arguments["stem"] = config.get(STEM_KEY, "imagenet")
    return arguments


def to_config_json(arguments):
    """A ResNet `config.json` dict for backbone constructor arguments (`get_config()`)."""
    if arguments["activation"] not in ACTIVATIONS.values():
        raise ValueError(f"activation {arguments['activation']!r} has no name in the ResNet "
                         f"layout; expected one of {sorted(set(ACTIVATIONS.values()))}.")
    config = {key: arguments[name] for name, key in CONFIG_JSON_KEYS.items()}
    config.update(model_type=MODEL_TYPE, hidden_act=arguments["activation"])
    if arguments["stem"] != "imagenet":
        config[STEM_KEY] = arguments["stem"]
    return config


def _convolution_map(prefix, unit):
    """Tensors of one convolution + BatchNorm unit (`ConvBatchNorm`)."""
    mapping = {f"{prefix}convolution.weight": convolution(lambda: unit.convolution.kernel)}
    for file_name, keras_name in BATCH_NORM_TENSORS.items():
        mapping[f"{prefix}normalization.{file_name}"] = reshaped(
            lambda name=keras_name: getattr(unit.normalization, name))
    return mapping


def weight_map(backbone):
    """`{tensor name in a ResNetModel file: TensorMapping}` for a `ResNetBackbone`."""
    mapping = _convolution_map("embedder.embedder.", backbone.embeddings.convolution_unit)
    blocks = iter(backbone.encoder_layers)
    for stage, depth in enumerate(backbone.depths):
        for index in range(depth):
            block = next(blocks)
            prefix = f"encoder.stages.{stage}.layers.{index}."
            for position, unit in enumerate(block.convolution_units):
                mapping.update(_convolution_map(f"{prefix}layer.{position}.", unit))
            if block.shortcut is not None:
                mapping.update(_convolution_map(f"{prefix}shortcut.", block.shortcut))
    return mapping


def buffers(names):
    """The BatchNorm step counters PyTorch keeps beside each normalization's statistics;
    written so that strict loaders find every tensor they expect (inference ignores them)."""
    return {name.replace(".running_mean", ".num_batches_tracked"): np.zeros((), "int64")
            for name in names if name.endswith(".running_mean")}
