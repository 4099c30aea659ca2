"""Image classification: one class per image, from folders of images per class.

The task stores the preprocessing its model needs (image size and per-channel mean/std) and
its training augmentation, so that `predict`, `evaluate` and every export prepare images the
same way (`keras_mapping.data.images`).
"""

import numpy as np

from keras_mapping.checkpoints import vision_layout

from keras_mapping.data.images import (DEFAULT_MEAN, DEFAULT_STD, image_dataset,
                                       image_files_to_predict, read_image_split)
from keras_mapping.models import ImageClassifier
from keras_mapping.models.image_classifier import check_image_size, image_preprocessing
from keras_mapping.tasks.classification import class_rows, class_serving_outputs
from keras_mapping.tasks.metrics import classification_metrics


# Images seen in a default run: 10 epochs of 25,000 images (ResNet-20 in about 6 minutes on
# 2 CPU cores), and more passes over smaller sets, up to 100 (BENCHMARKS.md, "Images").
DEFAULT_IMAGES_SEEN = 250_000
EPOCH_RANGE = (10, 100)
SMALL_IMAGE_SET = 5_000  # below this, batches of 32 (enough steps per epoch)
# Peak learning rates of full training: from random weights, and from trained ones.
SCRATCH_LEARNING_RATE, PRETRAINED_LEARNING_RATE = 1e-3, 5e-4


def default_crop_padding(image_size):
    """Pixels of padding before the random crop: 4 for 32x32 images (the CIFAR recipe),
    an eighth of the shorter side in general.

    Example:
    >>> default_crop_padding((32, 32)), default_crop_padding((224, 160))
    (4, 20)
    """
    return max(1, min(image_size) // 8)


class ImageClassificationTask:
    """One class per image, from the training split's class folders (sorted), with the
    model's image preprocessing.

    Args:
        class_names: the classes, by id.
        image_size: `(height, width)` images are resized to.
        mean, std: per-channel normalisation of [0, 1] pixels.
        crop_padding: training augmentation: pixels of black padding before a random crop
            back to `image_size` (0: no crop; None: `default_crop_padding`).
        flip: training augmentation: flip horizontally half the time.

    Example:
    >>> task = ImageClassificationTask(["cat", "dog"], (32, 32))
    >>> task.describe(), task.crop_padding
    ('image-classification of 32x32 images (2 classes)', 4)
    >>> ImageClassificationTask.from_config(task.config()).config() == task.config()
    True
    """

    name = "image-classification"
    monitor = "accuracy"
    output_activation = "softmax"
    modality = "image"
    pairs = False
    default_max_length = None  # images have no sequence length
    # Decoded pixels of a large validation folder would not fit in memory: decode each round.
    keeps_validation_batches = False

    def __init__(self, class_names, image_size, mean=DEFAULT_MEAN, std=DEFAULT_STD,
                 crop_padding=None, flip=True):
        self.class_names = list(class_names)
        self.image_size = tuple(int(size) for size in image_size)
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"`mean` and `std` need 3 values each (RGB), std positive; got "
                             f"{self.mean} and {self.std}.")
        self.crop_padding = (default_crop_padding(self.image_size) if crop_padding is None
                             else int(crop_padding))
        self.flip = bool(flip)

    def describe(self):
        height, width = self.image_size
        return f"{self.name} of {height}x{width} images ({len(self.class_names)} classes)"

    # -- data -------------------------------------------------------------------------------
    @classmethod
    def from_training_folder(cls, folder, preset=None, image_size=None, on_bad_image="error"):
        """`(task, training ImageFiles)` of `folder/train`: its classes, and the preset's
        preprocessing (`image_preprocessing`); the image size is `image_size` if given, else
        the preset's, else the training images' most common size."""
        preprocessing = image_preprocessing(preset) if preset is not None else {}
        size = (image_size, image_size) if isinstance(image_size, int) else image_size
        if preset is not None and size:
            check_image_size(preset, size)
        train = read_image_split(folder, "train", on_bad_image=on_bad_image)
        size = size or preprocessing.get("image_size") or train.most_common_size()
        task = cls(train.class_names, size, preprocessing.get("mean", DEFAULT_MEAN),
                   preprocessing.get("std", DEFAULT_STD))
        return task, train

    def examples(self, folder, split, on_bad_image="error"):
        """The `ImageFiles` of `folder/split`, its class folders checked against the task's."""
        return read_image_split(folder, split, self.class_names, on_bad_image)

    def unlabeled(self, paths, text_pairs=None):
        """Image files to predict (each must exist and decode)."""
        return image_files_to_predict(paths, self.class_names)

    def dataset(self, examples, tokenizer=None, max_length=None, batch_size=32, shuffle=False,
                seed=None, repeat=False, deterministic=None, **unused):
        """Batches of `(normalised images, class ids)`; training pipelines (`shuffle`) are
        augmented, seeded by `seed`."""
        augmentation = {"crop_padding": self.crop_padding, "flip": self.flip}
        return image_dataset(examples, self.image_size, batch_size, self.mean, self.std,
                             shuffle=shuffle, seed=seed, repeat=repeat,
                             augmentation=augmentation if shuffle else None,
                             deterministic=deterministic)

    def recipe_defaults(self, train_examples, method, pretrained):
        """Image recipes: about `DEFAULT_IMAGES_SEEN` images per run (within `EPOCH_RANGE`
        epochs; half as many from trained weights), batches of 32 below `SMALL_IMAGE_SET`
        images, and full training at `SCRATCH_LEARNING_RATE` or
        `PRETRAINED_LEARNING_RATE` (the other methods keep their own rates).

        Example:
        >>> task = ImageClassificationTask(["cat", "dog"], (32, 32))
        >>> task.recipe_defaults(500, "full", pretrained=False)
        {'epochs': 100.0, 'batch_size': 32, 'learning_rate': 0.001}
        >>> task.recipe_defaults(25_000, "linear-probe", pretrained=True)
        {'epochs': 5.0, 'batch_size': 128}
        """
        low, high = EPOCH_RANGE
        epochs = min(high, max(low, round(DEFAULT_IMAGES_SEEN / max(train_examples, 1))))
        recipe = {"epochs": float(epochs // 2 if pretrained else epochs),
                  "batch_size": 32 if train_examples < SMALL_IMAGE_SET else 128}
        if method == "full":
            recipe["learning_rate"] = (PRETRAINED_LEARNING_RATE if pretrained
                                       else SCRATCH_LEARNING_RATE)
        return recipe

    def prepared(self, examples, tokenizer, max_length):
        """The examples themselves: images are decoded in the pipeline."""
        return examples

    def truncated(self, examples, tokenizer, max_length):
        """Always 0: images are resized, never cut."""
        return 0

    # -- model ------------------------------------------------------------------------------
    def build_model(self, backbone, dropout, pooling=None):
        return ImageClassifier(backbone, num_classes=len(self.class_names), dropout=dropout)

    # -- results ----------------------------------------------------------------------------
    def report(self, outputs, examples):
        metrics = classification_metrics(outputs, examples.targets, len(self.class_names))
        return {**metrics, "label_names": list(self.class_names),
                "skipped_images": len(examples.skipped)}

    def rows(self, outputs):
        return class_rows(outputs, self.class_names)

    def predicted_rows(self, outputs, examples, tokenizer=None):
        return self.rows(np.asarray(outputs, "float64"))

    def serving_outputs(self, outputs):
        return class_serving_outputs(outputs)

    def preprocessor_config(self):
        """This task's preprocessing as a `preprocessor_config.json` (Hugging Face layout)."""
        return vision_layout.preprocessor_config(self.mean, self.std, self.image_size)

    @property
    def label_names(self):
        return list(self.class_names)

    # -- storage ----------------------------------------------------------------------------
    def config(self):
        return {"task": self.name, "class_names": self.class_names,
                "image_size": list(self.image_size), "mean": self.mean, "std": self.std,
                "crop_padding": self.crop_padding, "flip": self.flip}

    @classmethod
    def from_config(cls, config):
        return cls(config["class_names"], config["image_size"], config["mean"], config["std"],
                   config["crop_padding"], config["flip"])
