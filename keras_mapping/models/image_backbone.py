"""What every image backbone shares: NHWC float images in, a dict of outputs with a
`pooled_output` out, a block list for freezing, PEFT and layer-wise learning rates, and the
Hugging Face directory layout (`from_preset`, `save_to_preset`)."""

import keras

from keras_mapping.checkpoints import vision_layout


def image_input(image_size, num_channels):
    """The symbolic NHWC image input; `image_size` None leaves height and width open."""
    height, width = (None, None) if image_size is None else (
        (image_size, image_size) if isinstance(image_size, int) else tuple(image_size))
    return keras.Input(shape=(height, width, num_channels), dtype="float32", name="images")


class ImageBackbone(keras.Model):
    """Base of `ViTBackbone` and `ResNetBackbone`.

    Subclasses build a functional graph in `__init__` and set `embeddings` (the input stem)
    and `encoder_layers` (the blocks, input side first, named `encoder_layer_<i>` so that
    layer-wise learning-rate decay finds them), and name their checkpoint family (a key of
    `keras_mapping.checkpoints.vision_layout.FAMILIES`) in `checkpoint_family`.
    """

    checkpoint_family = None

    def freeze(self, embeddings=False, num_layers=0):
        """Sets which parts train: the embeddings (input stem), and the lowest `num_layers`
        blocks. Calling it again replaces the previous setting. Recompile afterwards.

        Args:
            embeddings: freeze the input stem.
            num_layers: freeze this many blocks, counted from the input side.
        """
        if not 0 <= num_layers <= len(self.encoder_layers):
            raise ValueError(f"`num_layers` must be between 0 and {len(self.encoder_layers)}, "
                             f"got {num_layers}.")
        self.embeddings.trainable = not embeddings
        for index, layer in enumerate(self.encoder_layers):
            layer.trainable = index >= num_layers

    @classmethod
    def from_preset(cls, preset, load_weights=True, **overrides):
        """A backbone built from a directory's `config.json`, with its weights.

        Args:
            preset: a directory in the Hugging Face layout (`config.json` +
                `model.safetensors`) of this backbone's family, a base model or a
                classifier (whose head is then ignored).
            load_weights: False builds the architecture with random weights.
            **overrides: constructor arguments to change, e.g. `dropout` or `dtype`.
        """
        directory = vision_layout.resolve_directory(preset, need_weights=load_weights)
        family, arguments = vision_layout.read_config(directory)
        if family != cls.checkpoint_family:
            raise ValueError(
                f"{directory / vision_layout.CONFIG_FILE}: model_type {family!r} is not a "
                f"{cls.__name__} ({cls.checkpoint_family!r}); load it with the backbone of "
                "its family or with `ImageClassifier.from_preset`.")
        backbone = cls(**{**arguments, **overrides})
        if load_weights:
            vision_layout.load_weights(directory, family, backbone)
        return backbone

    def save_to_preset(self, directory, preprocessing=None, overwrite=False):
        """Writes `config.json` and `model.safetensors` of the base model (`ViTModel`,
        `ResNetModel`) so that `from_preset(directory)` and other tooling load it.

        Args:
            directory: destination folder; written atomically.
            preprocessing: `vision_layout.preprocessor_config(...)`, written as
                `preprocessor_config.json` when given.
            overwrite: replace an existing directory.
        """
        return vision_layout.save(directory, self.checkpoint_family, self,
                                  preprocessing=preprocessing, overwrite=overwrite)

    @classmethod
    def from_config(cls, config):
        return cls(**config)
