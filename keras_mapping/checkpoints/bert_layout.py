"""Reading and writing `BertBackbone` weights in the common BERT directory layout.

The layout is `config.json` + `model.safetensors` + `vocab.txt` + `tokenizer_config.json`,
with tensor names and `(out, in)` kernel orientation of the PyTorch reference implementation.
Tensors are read with safetensors' NumPy API: no PyTorch needed.

Nothing here imports `keras_mapping.models`: the functions take the backbone (and tokenizer)
to read from or write into, and only use the attributes named in `weight_map`, so the
models can import this module at their top level without an import cycle.
"""

import json
import os
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from keras_mapping.checkpoints.model_dir import read_config_file, write_directory_atomically

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
# Checkpoints saved from task models prefix the encoder's tensors with the model name.
STRIPPED_PREFIXES = ("bert.",)
# Older TF-converted checkpoints name LayerNorm weights gamma/beta.
LEGACY_NAMES = {".LayerNorm.gamma": ".LayerNorm.weight", ".LayerNorm.beta": ".LayerNorm.bias"}

# Backbone constructor argument <- the key config.json uses for it.
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
# What a config.json means when it leaves a key out (the reference BertConfig's defaults).
CONFIG_JSON_DEFAULTS = {"type_vocab_size": 2, "hidden_dropout_prob": 0.1, "hidden_act": "gelu",
                        "layer_norm_eps": 1e-12}
# config.json activation name -> ours. "gelu" in BERT checkpoints is the exact erf GELU.
ACTIVATIONS = {"gelu": "gelu", "relu": "relu", "gelu_new": "keras_mapping>gelu_approximate",
               "gelu_pytorch_tanh": "keras_mapping>gelu_approximate"}


def _linear(variable_getter, input_axes=1):
    """A PyTorch Linear weight `(out, in)` <-> a Keras kernel whose first `input_axes` axes
    make up `in` (e.g. `(in, heads, head_dim)`, or `(heads, head_dim, out)` with 2)."""
    def to_file(value):
        return value.reshape(int(np.prod(value.shape[:input_axes])), -1).T

    return variable_getter, (lambda tensor, variable: tensor.T.reshape(variable.shape)), to_file


def _vector(variable_getter):
    """A 1-D tensor (bias, LayerNorm scale or offset) <-> a Keras variable of any shape."""
    return variable_getter, (lambda tensor, variable: tensor.reshape(variable.shape)), (
        lambda value: value.reshape(-1))


def _table(variable_getter):
    """An embedding table, stored the same way in both."""
    return variable_getter, (lambda tensor, variable: tensor), (lambda value: value)


def weight_map(backbone):
    """`{tensor name in the file: (variable getter, file->keras, keras->file)}`."""
    embeddings = backbone.embeddings
    mapping = {
        "embeddings.word_embeddings.weight": _table(
            lambda: embeddings.token_embedding.embeddings),
        "embeddings.position_embeddings.weight": _table(
            lambda: embeddings.position_embedding.position_embeddings),
        "embeddings.token_type_embeddings.weight": _table(
            lambda: embeddings.segment_embedding.embeddings),
        "embeddings.LayerNorm.weight": _vector(lambda: embeddings.layer_norm.gamma),
        "embeddings.LayerNorm.bias": _vector(lambda: embeddings.layer_norm.beta),
        "pooler.dense.weight": _linear(lambda: backbone.pooler_dense.kernel),
        "pooler.dense.bias": _vector(lambda: backbone.pooler_dense.bias),
    }
    for index, encoder in enumerate(backbone.encoder_layers):
        prefix = f"encoder.layer.{index}."
        attention = encoder.attention_layer
        for name, dense in (("query", "query_dense"), ("key", "key_dense"),
                            ("value", "value_dense")):
            mapping[f"{prefix}attention.self.{name}.weight"] = _linear(
                lambda a=attention, d=dense: getattr(a, d).kernel)
            mapping[f"{prefix}attention.self.{name}.bias"] = _vector(
                lambda a=attention, d=dense: getattr(a, d).bias)
        mapping[f"{prefix}attention.output.dense.weight"] = _linear(
            lambda a=attention: a.output_dense.kernel, input_axes=2)
        mapping[f"{prefix}attention.output.dense.bias"] = _vector(
            lambda a=attention: a.output_dense.bias)
        for file_name, layer_name in (
            ("attention.output.LayerNorm", "attention_layer_norm"),
            ("output.LayerNorm", "output_layer_norm"),
        ):
            mapping[f"{prefix}{file_name}.weight"] = _vector(
                lambda e=encoder, n=layer_name: getattr(e, n).gamma)
            mapping[f"{prefix}{file_name}.bias"] = _vector(
                lambda e=encoder, n=layer_name: getattr(e, n).beta)
        for file_name, layer_name in (("intermediate.dense", "intermediate_dense"),
                                      ("output.dense", "output_dense")):
            mapping[f"{prefix}{file_name}.weight"] = _linear(
                lambda e=encoder, n=layer_name: getattr(e, n).kernel)
            mapping[f"{prefix}{file_name}.bias"] = _vector(
                lambda e=encoder, n=layer_name: getattr(e, n).bias)
    return mapping


def _canonical_name(name):
    for prefix in STRIPPED_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
    for legacy, current in LEGACY_NAMES.items():
        if name.endswith(legacy):
            name = name[: -len(legacy)] + current
    return name


def read_tensors(path):
    """All tensors of a safetensors file as NumPy arrays, keyed by canonical BERT names."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Weights file '{path}' does not exist; a BERT directory holds {WEIGHTS_FILE}.")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(
            f"{path}: not a readable safetensors file (truncated or corrupt?): {error}"
        ) from error
    return {_canonical_name(name): value for name, value in tensors.items()}


def read_config(directory):
    """The backbone constructor arguments stored in `directory/config.json`."""
    path = Path(directory) / CONFIG_FILE
    config = read_config_file(path)
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object with BERT settings.")
    return from_config_json(config, path=path)


def from_config_json(config, path=CONFIG_FILE):
    """Backbone constructor arguments from a parsed BERT `config.json`.

    Args:
        config: the parsed JSON dict.
        path: the file it came from, named in errors.

    Raises:
        ValueError: a required key is missing, or a setting has no equivalent in our backbone.

    Example:
    >>> from_config_json({"vocab_size": 100, "num_hidden_layers": 2, "hidden_size": 8,
    ...                   "num_attention_heads": 2, "intermediate_size": 16,
    ...                   "max_position_embeddings": 32})["num_segments"]
    2
    """
    missing = [key for key in CONFIG_JSON_KEYS.values()
               if key not in config and key not in CONFIG_JSON_DEFAULTS]
    if missing:
        raise ValueError(f"{path}: missing required BERT config keys {missing}.")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(
            f"{path}: position_embedding_type={config['position_embedding_type']!r} is not "
            "supported; only 'absolute' (learned) positions are.")
    config = {**CONFIG_JSON_DEFAULTS, **config}
    if config["hidden_act"] not in ACTIVATIONS:
        raise ValueError(
            f"{path}: hidden_act={config['hidden_act']!r} is not supported; expected one of "
            f"{sorted(ACTIVATIONS)}.")
    arguments = {name: config[key] for name, key in CONFIG_JSON_KEYS.items()}
    arguments["activation"] = ACTIVATIONS[config["hidden_act"]]
    if arguments["hidden_dim"] % arguments["num_heads"]:
        raise ValueError(
            f"{path}: hidden_size={arguments['hidden_dim']} is not divisible by "
            f"num_attention_heads={arguments['num_heads']}.")
    return arguments


def to_config_json(arguments):
    """A BERT `config.json` dict for backbone constructor arguments (`get_config()`)."""
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


def load_weights(backbone, path):
    """Copies the tensors of a BERT-layout safetensors file into `backbone`.

    Every tensor the backbone needs must be present with the right shape; extra tensors
    (task heads, `position_ids` buffers) are ignored.

    Raises:
        ValueError: a tensor is missing or has the wrong shape; the message names the file,
            the tensor and both shapes.
    """
    tensors = read_tensors(path)
    mapping = weight_map(backbone)
    missing = [name for name in mapping if name not in tensors]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ValueError(
            f"{path}: missing {len(missing)} tensor(s) the backbone needs: {shown}.")
    for name, (variable_getter, to_keras, _) in mapping.items():
        variable = variable_getter()
        tensor = tensors[name]
        expected = int(np.prod(variable.shape))
        if tensor.size != expected:
            raise ValueError(
                f"{path}: tensor '{name}' has shape {tuple(tensor.shape)}, but the model "
                f"built from config.json needs {expected} values for variable "
                f"'{variable.path}' of shape {tuple(variable.shape)}.")
        variable.assign(to_keras(tensor.astype("float32"), variable))


def tokenizer_config(tokenizer):
    """The `tokenizer_config.json` fields other BERT tooling reads, for our tokenizer."""
    settings = tokenizer.get_config()
    return {
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": bool(settings.get("lowercase", True)),
        "strip_accents": settings.get("strip_accents"),
        "tokenize_chinese_chars": bool(settings.get("split_on_cjk", True)),
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
    }


def save_backbone(backbone, directory, vocabulary=None, tokenizer_config=None,
                  overwrite=False):
    """Writes `backbone` as a BERT directory, atomically.

    Files are written into a temporary sibling folder that is renamed into place only when
    complete, so a directory that exists is never half-written.

    Args:
        backbone: the `BertBackbone` to save.
        directory: destination folder.
        vocabulary: path of a `vocab.txt` or list of tokens to store with the weights.
        tokenizer_config: dict written as `tokenizer_config.json`.
        overwrite: replace an existing directory.
    """
    def fill(staging):
        config = to_config_json(backbone.get_config())
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        tensors = {
            name: np.ascontiguousarray(to_file(np.asarray(getter(), "float32")))
            for name, (getter, _, to_file) in weight_map(backbone).items()
        }
        save_file(tensors, str(staging / WEIGHTS_FILE), metadata={"format": "pt"})
        if vocabulary is not None:
            tokens = (Path(vocabulary).read_text(encoding="utf-8").splitlines()
                      if isinstance(vocabulary, (str, os.PathLike)) else list(vocabulary))
            (staging / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
        if tokenizer_config is not None:
            (staging / "tokenizer_config.json").write_text(
                json.dumps(tokenizer_config, indent=2) + "\n")

    return write_directory_atomically(directory, fill, overwrite)
