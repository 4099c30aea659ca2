"""Reading and writing `BertBackbone` weights in the common BERT directory layout.

The layout is `config.json` + `model.safetensors` + `vocab.txt` + `tokenizer_config.json`,
with tensor names and `(out, in)` kernel orientation of the PyTorch reference implementation.
Tensors are read with safetensors' NumPy API: no PyTorch needed.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from keras_mapping.models.bert import config as bert_config

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
# Checkpoints saved from task models prefix the encoder's tensors with the model name.
STRIPPED_PREFIXES = ("bert.",)
# Older TF-converted checkpoints name LayerNorm weights gamma/beta.
LEGACY_NAMES = {".LayerNorm.gamma": ".LayerNorm.weight", ".LayerNorm.beta": ".LayerNorm.bias"}


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
    if not path.is_file():
        raise FileNotFoundError(f"Config file '{path}' does not exist.")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path}: line {error.lineno}: not valid JSON ({error.msg}).") from error
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object with BERT settings.")
    return bert_config.from_config_json(config, path=path)


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


def load_backbone(preset, load_weights_from_file=True, **overrides):
    """A `BertBackbone` built from a preset's config.json, with its weights loaded."""
    from keras_mapping.checkpoints.presets import resolve_preset
    from keras_mapping.models.bert.backbone import BertBackbone

    directory = resolve_preset(preset)
    backbone = BertBackbone(**{**read_config(directory), **overrides})
    if load_weights_from_file:
        load_weights(backbone, directory / WEIGHTS_FILE)
    return backbone


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
    directory = Path(directory)
    if directory.exists() and not overwrite:
        raise FileExistsError(
            f"'{directory}' already exists; pass overwrite=True to replace it.")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        config = bert_config.to_config_json(backbone.get_config())
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
        for path in staging.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory
