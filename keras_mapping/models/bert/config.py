"""Named BERT architectures and conversion to and from the `config.json` of the BERT layout."""

# Sizes of the named BERT architectures (Turc et al. 2019 for the small ones; MiniLM-L6-H384
# for `minilm_l6`). Vocabulary and position limits are those of the uncased English models.
ARCHITECTURES = {
    "bert_tiny": dict(num_layers=2, hidden_dim=128, num_heads=2, intermediate_dim=512),
    "bert_mini": dict(num_layers=4, hidden_dim=256, num_heads=4, intermediate_dim=1024),
    "bert_small": dict(num_layers=4, hidden_dim=512, num_heads=8, intermediate_dim=2048),
    "bert_medium": dict(num_layers=8, hidden_dim=512, num_heads=8, intermediate_dim=2048),
    "bert_base": dict(num_layers=12, hidden_dim=768, num_heads=12, intermediate_dim=3072),
    "minilm_l6": dict(num_layers=6, hidden_dim=384, num_heads=12, intermediate_dim=1536),
}

DEFAULTS = dict(
    vocabulary_size=30522,
    max_sequence_length=512,
    num_segments=2,
    dropout=0.1,
    activation="gelu",
    layer_norm_epsilon=1e-12,
)

# Our constructor argument <- the key the BERT layout's config.json uses for it.
CONFIG_JSON_KEYS = {
    "vocabulary_size": "vocab_size",
    "num_layers": "num_hidden_layers",
    "num_heads": "num_attention_heads",
    "hidden_dim": "hidden_size",
    "intermediate_dim": "intermediate_size",
    "max_sequence_length": "max_position_embeddings",
    "num_segments": "type_vocab_size",
    "dropout": "hidden_dropout_prob",
    "activation": "hidden_act",
    "layer_norm_epsilon": "layer_norm_eps",
}

# config.json activation names <- our names. "gelu" in BERT checkpoints is the exact erf GELU.
ACTIVATIONS = {"gelu": "gelu", "relu": "relu", "gelu_new": "keras_mapping>gelu_approximate",
               "gelu_pytorch_tanh": "keras_mapping>gelu_approximate"}


def architecture(name, **overrides):
    """Constructor arguments of `BertBackbone` for a named architecture.

    Args:
        name: one of `ARCHITECTURES`.
        **overrides: any constructor argument to change (e.g. `vocabulary_size`).

    Example:
    >>> architecture("bert_tiny")["hidden_dim"]
    128
    """
    if name not in ARCHITECTURES:
        raise ValueError(
            f"Unknown architecture '{name}'. Known: {', '.join(sorted(ARCHITECTURES))}.")
    return {**DEFAULTS, **ARCHITECTURES[name], **overrides}


def from_config_json(config, path="config.json"):
    """Backbone constructor arguments from a parsed BERT `config.json`.

    Args:
        config: the parsed JSON dict.
        path: the file it came from, named in errors.
    """
    missing = [key for name, key in CONFIG_JSON_KEYS.items()
               if key not in config and name not in ("dropout", "activation",
                                                     "layer_norm_epsilon", "num_segments")]
    if missing:
        raise ValueError(f"{path}: missing required BERT config keys {missing}.")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(
            f"{path}: position_embedding_type={config['position_embedding_type']!r} is not "
            "supported; only 'absolute' (learned) positions are.")
    activation = config.get("hidden_act", "gelu")
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"{path}: hidden_act={activation!r} is not supported; expected one of "
            f"{sorted(ACTIVATIONS)}.")
    arguments = {name: config[key] for name, key in CONFIG_JSON_KEYS.items() if key in config}
    arguments["activation"] = ACTIVATIONS[activation]
    if arguments["hidden_dim"] % arguments["num_heads"]:
        raise ValueError(
            f"{path}: hidden_size={arguments['hidden_dim']} is not divisible by "
            f"num_attention_heads={arguments['num_heads']}.")
    return {**DEFAULTS, **arguments}


def to_config_json(arguments):
    """A BERT `config.json` dict for backbone constructor arguments."""
    activation = {"gelu": "gelu", "relu": "relu",
                  "keras_mapping>gelu_approximate": "gelu_new"}[arguments["activation"]]
    config = {key: arguments[name] for name, key in CONFIG_JSON_KEYS.items()}
    config.update(
        architectures=["BertModel"],
        model_type="bert",
        hidden_act=activation,
        attention_probs_dropout_prob=arguments["dropout"],
        position_embedding_type="absolute",
        pad_token_id=0,
        initializer_range=0.02,
    )
    return config
