"""An image classifier: class logits from any image backbone's pooled output."""

from pathlib import Path

import keras

from keras_mapping.checkpoints import vision_layout
from keras_mapping.checkpoints.model_dir import PRESET_DIR
from keras_mapping.checkpoints.presets import IMAGE_PRESETS
from keras_mapping.models.resnet import RESNET_ARCHITECTURES, ResNetBackbone
from keras_mapping.models.task import Task, output_layers
from keras_mapping.models.vit import VIT_ARCHITECTURES, ViTBackbone

# The backbone class of each checkpoint family (`config.json`'s model_type).
BACKBONES = {"vit": ViTBackbone, "resnet": ResNetBackbone}
# The backbone class of each named architecture (random weights).
IMAGE_ARCHITECTURES = {**{name: ViTBackbone for name in VIT_ARCHITECTURES},
                       **{name: ResNetBackbone for name in RESNET_ARCHITECTURES}}


@keras.saving.register_keras_serializable(package="keras_mapping")
class ImageClassifier(Task):
    """Dropout and a dense layer over the backbone's `pooled_output`, returning float32
    class logits; `compile()` defaults to AdamW at 5e-5, sparse cross-entropy on logits and
    accuracy.

    The head is that of the reference classifiers: ViT's reads the class token after the
    final LayerNorm, ResNet's the spatial average of the last stage, so checkpoints of
    `ViTForImageClassification` and `ResNetForImageClassification` load with their heads.

    Args:
        backbone: a `ViTBackbone` or `ResNetBackbone` (any model with a `pooled_output`).
        num_classes: number of classes.
        dropout: dropout rate before the output layer (the reference heads have none).
        **kwargs: base `keras.Model` arguments.

    Example:
    >>> import numpy as np
    >>> from keras_mapping.models import ResNetBackbone
    >>> classifier = ImageClassifier(ResNetBackbone.from_architecture("resnet20"), 10)
    >>> tuple(classifier.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0).shape)
    (2, 10)
    """

    task_kind = "classification"

    def __init__(self, backbone, num_classes, dropout=0.0, **kwargs):
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"`num_classes` must be an integer >= 2, got {num_classes!r}.")
        self.backbone = backbone
        self.output_dropout, self.output_dense = output_layers(num_classes, dropout)
        inputs = backbone.input
        pooled = backbone(inputs)["pooled_output"]
        logits = self.output_dense(self.output_dropout(pooled))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        self.num_classes = num_classes
        self.dropout = dropout

    def task_config(self):
        return {"num_classes": self.num_classes, "dropout": self.dropout}

    @classmethod
    def from_preset(cls, preset, num_classes=None, load_weights=True, **kwargs):
        """A classifier built from a Hugging Face-layout directory (ViT or ResNet).

        The stored head loads when the file has one for `num_classes` classes; otherwise
        (a base model's file, another class count) the head starts from scratch.

        Args:
            preset: a directory holding `config.json` and `model.safetensors`.
            num_classes: number of classes; by default that of the stored head, or of
                `config.json`'s labels when weights are not loaded.
            load_weights: False gives random weights everywhere.
            **kwargs: the classifier's other arguments (`dropout`, `name`).
        """
        directory = vision_layout.resolve_directory(preset, need_weights=load_weights)
        family, arguments = vision_layout.read_config(directory)
        stored_classes = (vision_layout.head_classes(directory, family) if load_weights
                          else len(vision_layout.read_labels(directory) or []) or None)
        if num_classes is None:
            if stored_classes is None:
                raise ValueError(
                    f"{directory}: holds no classifier head; pass `num_classes`.")
            num_classes = stored_classes
        model = cls(BACKBONES[family](**arguments), num_classes, **kwargs)
        if load_weights:
            head = model.output_dense if stored_classes == num_classes else None
            vision_layout.load_weights(directory, family, model.backbone, head)
        return model

    def save_to_preset(self, directory, labels=None, preprocessing=None, overwrite=False):
        """Writes `config.json` and `model.safetensors` of the whole classifier
        (`ViTForImageClassification` or `ResNetForImageClassification`).

        Args:
            directory: destination folder; written atomically.
            labels: class names by class id, stored as `id2label` ("LABEL_<i>" by default).
            preprocessing: `vision_layout.preprocessor_config(...)`, written as
                `preprocessor_config.json` when given.
            overwrite: replace an existing directory.
        """
        return vision_layout.save(directory, self.backbone.checkpoint_family, self.backbone,
                                  head=self.output_dense, labels=labels,
                                  preprocessing=preprocessing, overwrite=overwrite)


def _image_preset_error(preset):
    return ValueError(
        f"--preset {preset!r} is neither an image architecture "
        f"({', '.join(sorted(IMAGE_ARCHITECTURES))}: random weights), nor an ImageNet "
        f"checkpoint name ({', '.join(sorted(IMAGE_PRESETS))}), nor a directory "
        f"holding an image model in the Hugging Face layout ({vision_layout.CONFIG_FILE} with "
        f"model_type 'vit' or 'resnet', and {vision_layout.WEIGHTS_FILE}), nor an image "
        "model directory written by finetune.")


def _image_directory(preset):
    """The Hugging Face-layout directory of `preset`: a hub download of a name of
    `IMAGE_PRESETS`, the directory itself, or the `preset/` folder of an image model
    directory written by `finetune`."""
    if preset in IMAGE_PRESETS:
        return vision_layout.resolve_directory(preset)
    directory = Path(str(preset)).expanduser()
    if (directory / PRESET_DIR / vision_layout.CONFIG_FILE).is_file():
        return directory / PRESET_DIR
    if not (directory / vision_layout.CONFIG_FILE).is_file():
        raise _image_preset_error(preset)
    return directory


def image_preprocessing(preset):
    """What images fed to `image_backbone(preset)` need, as far as the preset says:
    `{"mean", "std"}` and, when it fixes one, `"image_size"` (see
    `vision_layout.read_preprocessing`); `{}` for architecture names, which take any size.

    Example:
    >>> image_preprocessing("resnet20")
    {}
    """
    if preset in IMAGE_ARCHITECTURES:
        return {}
    return vision_layout.read_preprocessing(_image_directory(preset))


def check_image_size(preset, image_size):
    """Raises ValueError when `preset` is a ViT directory whose position table fixes another
    image size than `(height, width)` `image_size` (architectures take any size)."""
    if preset in IMAGE_ARCHITECTURES:
        return
    directory = _image_directory(preset)
    family, _ = vision_layout.read_config(directory)
    fixed = vision_layout.read_preprocessing(directory).get("image_size")
    if family == "vit" and tuple(fixed) != tuple(image_size):
        raise ValueError(f"{directory}: this ViT takes {fixed[0]}x{fixed[1]} images (its "
                         f"position table), not {image_size[0]}x{image_size[1]}; leave "
                         "--image-size unset.")


def image_backbone(preset, image_size, load_weights=True, dropout=None, peft=None):
    """The backbone of an image task: a named architecture with random weights, or a
    Hugging Face-layout directory's (pretrained unless `load_weights` is False).

    Args:
        preset: a key of `IMAGE_ARCHITECTURES` ("resnet20", "vit_tiny", ...) or a directory.
        image_size: `(height, width)` of the images; a ViT directory must take that size
            (`check_image_size`).
        load_weights: load a directory's weights.
        dropout: the ViT's dropout rate (None: the preset's); ResNets have none.
        peft: parameter-efficient pieces for ViT blocks (`peft_options`).

    Example:
    >>> backbone = image_backbone("resnet20", (16, 16))
    >>> type(backbone).__name__, backbone.image_size
    ('ResNetBackbone', (16, 16))
    """
    image_size = tuple(image_size)
    check_image_size(preset, image_size)
    directory = None if preset in IMAGE_ARCHITECTURES else _image_directory(preset)
    cls = (IMAGE_ARCHITECTURES[preset] if directory is None
           else BACKBONES[vision_layout.read_config(directory)[0]])
    # A ViT directory's size is its own (checked above); the other backbones take ours.
    overrides = {} if cls is ViTBackbone and directory else {"image_size": image_size}
    if cls is ViTBackbone:
        overrides.update(peft=peft or None, **({} if dropout is None else {"dropout": dropout}))
    elif peft:
        raise ValueError("parameter-efficient methods add pieces to Transformer blocks, which "
                         "a ResNet has none of: use --method full with it.")
    if directory is None:
        return cls.from_architecture(preset, **overrides)
    return cls.from_preset(directory, load_weights=load_weights, **overrides)
