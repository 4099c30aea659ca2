"""The Vision Transformer in the Hugging Face layout (`ViTModel`,
`ViTForImageClassification`): config.json keys and tensor names of a `ViTBackbone`.

Only the attributes of the backbone named in `weight_map` are used; nothing here imports
`keras_mapping.models`.
"""

from keras_mapping.checkpoints.bert_layout import ACTIVATIONS
from keras_mapping.checkpoints.tensor_mapping import convolution, linear, reshaped

MODEL_TYPE = "vit"
PREFIX = "vit."  # tensors of the encoder inside a classifier checkpoint
HEAD = "classifier"
BASE_ARCHITECTURE = "ViTModel"
CLASSIFIER_ARCHITECTURE = "ViTForImageClassification"

# Backbone constructor argument <- the config.json key for it.
CONFIG_JSON_KEYS = {
    "image_size": "image_size",
    "patch_size": "patch_size",
    "num_channels": "num_channels",
    "num_layers": "num_hidden_layers",
    "num_heads": "num_attention_heads",
    "hidden_dim": "hidden_size",
    "intermediate_dim": "intermediate_size",
    "dropout": "hidden_dropout_prob",
    "layer_norm_epsilon": "layer_norm_eps",
}
# What a config.json means when it leaves a key out (the reference ViTConfig's defaults).
CONFIG_JSON_DEFAULTS = {
    "image_size": 224, "patch_size": 16, "num_channels": 3, "num_hidden_layers": 12,
    "num_attention_heads": 12, "hidden_size": 768, "intermediate_size": 3072,
    "hidden_dropout_prob": 0.0, "layer_norm_eps": 1e-12, "hidden_act": "gelu",
}


def from_config_json(config, path):
    """`ViTBackbone` constructor arguments from a parsed ViT `config.json`.

    Raises:
        ValueError: a setting has no equivalent in our backbone; the message names `path`.

    Example:
    >>> from_config_json({"hidden_size": 64, "num_attention_heads": 4, "image_size": 32,
    ...                   "patch_size": 4}, "config.json")["num_layers"]
    12
    """
    config = {**CONFIG_JSON_DEFAULTS, **config}
    if config["hidden_act"] not in ACTIVATIONS:
        raise ValueError(f"{path}: hidden_act={config['hidden_act']!r} is not supported; "
                         f"expected one of {sorted(ACTIVATIONS)}.")
    arguments = {name: config[key] for name, key in CONFIG_JSON_KEYS.items()}
    arguments["activation"] = ACTIVATIONS[config["hidden_act"]]
    if arguments["hidden_dim"] % arguments["num_heads"]:
        raise ValueError(f"{path}: hidden_size={arguments['hidden_dim']} is not divisible by "
                         f"num_attention_heads={arguments['num_heads']}.")
    return arguments


def to_config_json(arguments):
    """A ViT `config.json` dict for backbone constructor arguments (`get_config()`)."""
    activations = {ours: theirs for theirs, ours in ACTIVATIONS.items()}
    activations["keras_mapping>gelu_approximate"] = "gelu_new"
    if arguments["activation"] not in activations:
        raise ValueError(f"activation {arguments['activation']!r} has no name in the ViT "
                         f"layout; expected one of {sorted(activations)}.")
    config = {key: arguments[name] for name, key in CONFIG_JSON_KEYS.items()}
    config.update(model_type=MODEL_TYPE, hidden_act=activations[arguments["activation"]],
                  attention_probs_dropout_prob=arguments["dropout"], qkv_bias=True,
                  initializer_range=0.02)
    return config


def _encoder_block_map(prefix, block):
    attention = block.attention_layer
    mapping = {}
    for name in ("query", "key", "value"):
        dense = getattr(attention, f"{name}_dense")
        mapping[f"{prefix}attention.attention.{name}.weight"] = linear(lambda d=dense: d.kernel)
        # Checkpoints made with `qkv_bias=False` have none: zeros compute the same.
        mapping[f"{prefix}attention.attention.{name}.bias"] = reshaped(
            lambda d=dense: d.bias, optional=True)
    for file_name, dense, input_axes in (
            ("attention.output.dense", attention.output_dense, 2),
            ("intermediate.dense", block.intermediate_dense, 1),
            ("output.dense", block.output_dense, 1)):
        mapping[f"{prefix}{file_name}.weight"] = linear(lambda d=dense: d.kernel, input_axes)
        mapping[f"{prefix}{file_name}.bias"] = reshaped(lambda d=dense: d.bias)
    for file_name, norm in (("layernorm_before", block.attention_layer_norm),
                            ("layernorm_after", block.output_layer_norm)):
        mapping[f"{prefix}{file_name}.weight"] = reshaped(lambda n=norm: n.gamma)
        mapping[f"{prefix}{file_name}.bias"] = reshaped(lambda n=norm: n.beta)
    return mapping


def weight_map(backbone):
    """`{tensor name in a ViTModel file: TensorMapping}` for a `ViTBackbone`."""
    projection = backbone.patch_embedding.projection
    positions = backbone.class_token_and_positions
    mapping = {
        "embeddings.patch_embeddings.projection.weight": convolution(lambda: projection.kernel),
        "embeddings.patch_embeddings.projection.bias": reshaped(lambda: projection.bias),
        "embeddings.cls_token": reshaped(lambda: positions.class_token,
                                         lambda shape: (1, 1, shape[-1])),
        "embeddings.position_embeddings": reshaped(
            lambda: positions.position_embedding.position_embeddings,
            lambda shape: (1, *shape)),
        "layernorm.weight": reshaped(lambda: backbone.final_layer_norm.gamma),
        "layernorm.bias": reshaped(lambda: backbone.final_layer_norm.beta),
    }
    for index, block in enumerate(backbone.encoder_layers):
        mapping.update(_encoder_block_map(f"encoder.layer.{index}.", block))
    return mapping
