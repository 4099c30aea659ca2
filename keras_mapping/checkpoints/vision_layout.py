"""Reading and writing image models in the Hugging Face directory layout: `config.json` +
`model.safetensors`, for ViT (`ViTModel`, `ViTForImageClassification`) and ResNet
(`ResNetModel`, `ResNetForImageClassification`).

Tensors are read and written with safetensors' NumPy API: no PyTorch needed. `config.json`'s
`model_type` ("vit" or "resnet") names the family; each family's config keys and tensor
names live in `vit_layout` and `resnet_layout`.

Nothing here imports `keras_mapping.models`: the functions take the backbone (and the
classifier's output layer) to read into or write from, so models import this module at
their top level without an import cycle.
"""

import json
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

from keras_mapping.checkpoints import resnet_layout, vit_layout
from keras_mapping.checkpoints.model_dir import read_config_file, write_directory_atomically
from keras_mapping.checkpoints.presets import IMAGE_FILES, IMAGE_PRESETS, download_from_hub
from keras_mapping.checkpoints.tensor_mapping import assign, collect, linear, reshaped

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FAMILIES = {"vit": vit_layout, "resnet": resnet_layout}
EXPECTED_FORM = (f"a directory in the Hugging Face layout holding {CONFIG_FILE} (model_type "
                 f"{' or '.join(repr(f) for f in FAMILIES)}) and {WEIGHTS_FILE}, as "
                 "`save_pretrained` or our `save_to_preset` write it")


def resolve_directory(preset, need_weights=True):
    """The directory of an image model, checked to hold the files it needs: a name of
    `IMAGE_PRESETS` (downloaded from the hub, which needs the network) or a directory.

    Raises:
        FileNotFoundError: the directory, or a file it needs, does not exist; or a named
            checkpoint cannot be downloaded (the message says how to pass a directory).
    """
    if str(preset) in IMAGE_PRESETS:
        name = str(preset)
        path = download_from_hub(name, IMAGE_PRESETS[name], IMAGE_FILES)
    else:
        path = Path(str(preset)).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"Image model directory '{path}' does not exist; pass {EXPECTED_FORM}, or one of "
            f"the ImageNet checkpoint names {', '.join(sorted(IMAGE_PRESETS))} where the hub "
            "is reachable. Offline: fetch one where you have network access (e.g. "
            "`huggingface-cli download google/vit-base-patch16-224 config.json "
            "model.safetensors preprocessor_config.json --local-dir DIR`) and pass DIR.")
    required = (CONFIG_FILE, WEIGHTS_FILE) if need_weights else (CONFIG_FILE,)
    missing = [name for name in required if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"Image model directory '{path}' is missing {', '.join(missing)}; expected "
            f"{EXPECTED_FORM}.")
    return path


def read_config_json(directory):
    """The parsed `config.json` of `directory`, with its family checked."""
    path = Path(directory) / CONFIG_FILE
    config = read_config_file(path, f" Expected {EXPECTED_FORM}.")
    if not isinstance(config, dict) or config.get("model_type") not in FAMILIES:
        found = config.get("model_type") if isinstance(config, dict) else None
        raise ValueError(
            f"{path}: model_type {found!r} is not an image model this layout reads; expected "
            f"a JSON object with model_type {' or '.join(repr(f) for f in FAMILIES)}.")
    return config


def read_config(directory):
    """`(family, backbone constructor arguments)` from `directory/config.json`."""
    config = read_config_json(directory)
    family = config["model_type"]
    return family, FAMILIES[family].from_config_json(config, Path(directory) / CONFIG_FILE)


def read_labels(directory):
    """Class names by class id from `config.json`'s `id2label`, or None without one."""
    id2label = read_config_json(directory).get("id2label")
    if not id2label:
        return None
    return [id2label[key] for key in sorted(id2label, key=int)]


PREPROCESSOR_FILE = "preprocessor_config.json"
# The normalisation each family's reference checkpoints were trained with, for directories
# without a preprocessor_config.json: ViT's maps [0, 1] to [-1, 1], ResNet's is ImageNet's.
FAMILY_NORMALIZATION = {"vit": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
                        "resnet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))}


def _preprocessor_size(size):
    """`(height, width)` of a preprocessor config's `size` or `crop_size`, when it names
    one (an int, `{"height", "width"}` or `{"shortest_edge"}`)."""
    if isinstance(size, int):
        return (size, size)
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return (int(size[0]), int(size[1]))
    if isinstance(size, dict) and "height" in size and "width" in size:
        return (int(size["height"]), int(size["width"]))
    if isinstance(size, dict) and "shortest_edge" in size:
        return (int(size["shortest_edge"]),) * 2
    return None


def read_preprocessing(directory):
    """What images fed to the model of `directory` need: `{"mean", "std"}` per channel of
    [0, 1] pixels, and `"image_size"` `(height, width)` when the directory fixes one (ViT's
    `config.json`, or a `preprocessor_config.json`). The normalisation comes from
    `preprocessor_config.json` when present, else from the family's (`FAMILY_NORMALIZATION`).
    """
    directory = Path(directory)
    config = read_config_json(directory)
    mean, std = FAMILY_NORMALIZATION[config["model_type"]]
    found = {"mean": list(mean), "std": list(std)}
    path = directory / PREPROCESSOR_FILE
    try:
        processor = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: line {error.lineno}: not valid JSON ({error.msg}).") from error
    if processor.get("do_normalize", True) and "image_mean" in processor:
        found.update(mean=list(processor["image_mean"]), std=list(processor["image_std"]))
    elif not processor.get("do_normalize", True):
        found.update(mean=[0.0] * 3, std=[1.0] * 3)
    size = _preprocessor_size(processor.get("crop_size") or processor.get("size"))
    if config["model_type"] == "vit":  # its position table fixes the size
        size = _preprocessor_size(config.get("image_size", 224))
    if size is not None:
        found["image_size"] = size
    return found


def read_tensors(path, family):
    """All tensors of a safetensors file as NumPy arrays, the classifier's encoder prefix
    ("vit.", "resnet.") stripped so that base-model and classifier files read alike."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Weights file '{path}' does not exist; expected {EXPECTED_FORM}.")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(
            f"{path}: not a readable safetensors file (truncated or corrupt?): {error}") from error
    prefix = FAMILIES[family].PREFIX
    return {name[len(prefix):] if name.startswith(prefix) else name: value
            for name, value in tensors.items()}


def _head_map(family, head):
    name = FAMILIES[family].HEAD
    return {f"{name}.weight": linear(lambda: head.kernel),
            f"{name}.bias": reshaped(lambda: head.bias)}


def head_classes(directory, family):
    """Number of classes of the classifier stored in `directory`, or None without one."""
    path = Path(directory) / WEIGHTS_FILE
    name = f"{FAMILIES[family].HEAD}.weight"
    try:
        with safe_open(str(path), framework="np") as handle:  # reads the header only
            return int(handle.get_slice(name).get_shape()[0]) if name in handle.keys() else None
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{path}: not a readable safetensors file: {error}") from error


def load_weights(directory, family, backbone, head=None):
    """Copies the tensors of `directory/model.safetensors` into `backbone` (and into the
    classifier's output `Dense` layer `head`, when given). Extra tensors (the unused pooler
    of `ViTModel`, BatchNorm step counters) are ignored.

    Raises:
        ValueError: a tensor is missing or has the wrong shape; the message names the file,
            the tensor and both shapes.
    """
    path = Path(directory) / WEIGHTS_FILE
    mapping = FAMILIES[family].weight_map(backbone)
    if head is not None:
        mapping.update(_head_map(family, head))
    assign(mapping, read_tensors(path, family), path)


def _config_json(family, backbone, head, labels):
    layout = FAMILIES[family]
    config = layout.to_config_json(backbone.get_config())
    config["architectures"] = [layout.CLASSIFIER_ARCHITECTURE if head is not None
                               else layout.BASE_ARCHITECTURE]
    if head is not None:
        num_classes = int(head.kernel.shape[-1])
        labels = list(labels) if labels is not None else [f"LABEL_{i}" for i in range(num_classes)]
        if len(labels) != num_classes:
            raise ValueError(f"`labels` has {len(labels)} names for {num_classes} classes.")
        config["id2label"] = {str(i): label for i, label in enumerate(labels)}
        config["label2id"] = {label: i for i, label in enumerate(labels)}
    return config


def _tensors(family, backbone, head):
    layout = FAMILIES[family]
    if head is None:
        tensors = collect(layout.weight_map(backbone))
    else:
        tensors = collect(layout.weight_map(backbone), prefix=layout.PREFIX)
        tensors.update(collect(_head_map(family, head)))
    if hasattr(layout, "buffers"):
        tensors.update(layout.buffers(list(tensors)))
    return tensors


def preprocessor_config(mean, std, image_size):
    """The `preprocessor_config.json` of images resized to `(height, width)` `image_size`
    and normalised per channel of [0, 1] pixels by `mean` and `std`, which
    `read_preprocessing` reads back."""
    height, width = image_size
    return {"do_resize": True, "size": {"height": int(height), "width": int(width)},
            "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
            "image_mean": list(mean), "image_std": list(std)}


def save(directory, family, backbone, head=None, labels=None, preprocessing=None,
         overwrite=False):
    """Writes `backbone` (as `ViTModel`/`ResNetModel`), or a classifier made of `backbone`
    and its output `Dense` layer `head` (as `...ForImageClassification`, with `labels` as
    `id2label`), into `directory`, atomically: files go to a temporary sibling folder that
    is renamed into place only when complete. `preprocessing` (`preprocessor_config`'s
    dict) is written as `preprocessor_config.json` when given.

    Raises:
        FileExistsError: `directory` exists and `overwrite` is False.
    """
    config = _config_json(family, backbone, head, labels)

    def fill(staging):
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        save_file(_tensors(family, backbone, head), str(staging / WEIGHTS_FILE),
                  metadata={"format": "pt"})
        if preprocessing is not None:
            (staging / PREPROCESSOR_FILE).write_text(json.dumps(preprocessing, indent=2) + "\n")

    return write_directory_atomically(directory, fill, overwrite)

