"""Image folders into tf.data: `DIR/{train,validation,test}/<class>/*.jpg|jpeg|png`.

Decoding, resizing, augmentation and normalisation all run inside tf.data, with the same
functions the exported graphs use (`decode_and_resize`, `normalize`, `ImagePreprocessor`),
so a served model sees exactly the pixels training and `predict` saw.

Every file is decoded once when a split is read (`scan_images`), so an unreadable image is
found before training starts and named; with `on_bad_image="skip"` it is left out and
counted (`ImageFiles.skipped`) instead.
"""

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_mapping.data.pipelines import pipeline_options
from keras_mapping.tracing import as_written

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
BAD_IMAGE_ACTIONS = ("error", "skip")
# Per-channel normalisation when the model names none: [0, 1] pixels to [-1, 1] (ViT's).
DEFAULT_MEAN = (0.5, 0.5, 0.5)
DEFAULT_STD = (0.5, 0.5, 0.5)
EXPECTED_LAYOUT = ("DIR/train/<class>/*.jpg|jpeg|png, with DIR/validation/<class>/... "
                   "(and optionally DIR/test/<class>/...) beside it")
SHOWN_BAD_FILES = 5


@dataclass(frozen=True, eq=False)  # arrays inside: identity, not element-wise ==
class ImageFiles:
    """The image files of one split, with their class ids.

    Args:
        paths: the files, as strings, sorted by class then by name.
        targets: int32 class id of each file.
        class_names: the class of each id.
        source: where the files came from (a split folder, or "predict"), for messages.
        sizes: `(height, width)` of each image, an int array `[n, 2]`.
        skipped: unreadable files left out (`on_bad_image="skip"`).
    """

    paths: list
    targets: np.ndarray
    class_names: list
    source: str
    sizes: np.ndarray
    skipped: tuple = ()

    def __len__(self):
        return len(self.paths)

    def head(self, count):
        """`count` of the images, the same ones every time (quick runs): a fixed random
        subset in listing order, since the first files of a listing are all of one class.
        The skipped files stay listed."""
        if count >= len(self):
            return self
        return self.subset(np.sort(np.random.default_rng(0).permutation(len(self))[:count]))

    def subset(self, indices):
        """The images at `indices` (an int array), in that order; the skipped files stay
        listed."""
        return replace(self, paths=[self.paths[i] for i in indices],
                       targets=self.targets[indices], sizes=self.sizes[indices])

    def most_common_size(self):
        """The `(height, width)` most images have (the first such size on ties)."""
        if not len(self):
            raise ValueError(f"{self.source}: no images to take an image size from.")
        return Counter(map(tuple, self.sizes.tolist())).most_common(1)[0][0]


def decode_image(encoded):
    """uint8 RGB pixels `[height, width, 3]` of encoded image bytes (JPEG, PNG; grayscale
    and alpha converted to RGB; the first frame of an animation)."""
    return tf.io.decode_image(encoded, channels=3, expand_animations=False)


def decode_and_resize(encoded, image_size):
    """Float32 RGB pixels in [0, 1], resized (bilinear) to `image_size` `(height, width)`.
    An image already of that size comes back unchanged.

    Example:
    >>> png = tf.io.encode_png(tf.zeros([4, 6, 3], tf.uint8))
    >>> image = decode_and_resize(png, (2, 3))
    >>> tuple(image.shape), float(tf.reduce_max(image))
    ((2, 3, 3), 0.0)
    """
    image = tf.image.convert_image_dtype(decode_image(encoded), tf.float32)
    image = tf.image.resize(image, image_size, method="bilinear")
    return tf.ensure_shape(image, [*image_size, 3])


def normalize(images, mean, std):
    """`(images - mean) / std` per channel (the last axis)."""
    return (images - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


def images_from_bytes(image_bytes, image_size):
    """A batch of encoded images (`tf.string [batch]`) as float32 pixels
    `[batch, height, width, 3]` in [0, 1] (`decode_and_resize` on each)."""
    return tf.map_fn(lambda encoded: decode_and_resize(encoded, image_size), image_bytes,
                     fn_output_signature=tf.TensorSpec([*image_size, 3], tf.float32))


def augment(image, seed, crop_padding, flip):
    """A random crop of `image` padded with `crop_padding` black pixels on each side, back
    to its size, and a horizontal flip half the time. Stateless: the same `seed` (an int64
    pair) gives the same result.

    Example:
    >>> image = tf.reshape(tf.range(16, dtype=tf.float32), [4, 4, 1]) * tf.ones([1, 1, 3])
    >>> seed = tf.constant([7, 0], tf.int64)
    >>> bool(tf.reduce_all(augment(image, seed, 1, True) == augment(image, seed, 1, True)))
    True
    """
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if crop_padding:
        padded = tf.pad(image, [[crop_padding, crop_padding], [crop_padding, crop_padding],
                                [0, 0]])
        image = tf.image.stateless_random_crop(padded, tf.shape(image), seed=crop_seed)
    if flip:
        image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
    return image


def numbered_files(files, shuffle=False, seed=None, repeat=False):
    """`(dataset of (position in the stream, (path, class id)), the int64 base seed)` of
    `ImageFiles`, shuffled each pass with `seed` and repeated as asked: each image's random
    augmentation is drawn from the base seed and its position, so the same seed gives the
    same pixels however many threads decode them."""
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(files.paths, tf.string), tf.constant(files.targets, tf.int32)))
    if shuffle:
        dataset = dataset.shuffle(max(len(files), 1), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    return dataset.enumerate(), tf.constant(0 if seed is None else seed, tf.int64)


def image_dataset(files, image_size, batch_size, mean=DEFAULT_MEAN, std=DEFAULT_STD,
                  shuffle=False, seed=None, repeat=False, augmentation=None,
                  deterministic=None):
    """Batches of `(images, class ids)`: normalised float32 images `[batch, height, width,
    3]` of `files` (`ImageFiles`), decoded and resized in tf.data.

    Args:
        files: `ImageFiles`.
        image_size: `(height, width)` every image is resized to.
        batch_size: images per batch.
        mean, std: per-channel normalisation of the [0, 1] pixels.
        shuffle: shuffle the files (all of them) each epoch, with `seed`.
        seed: the seed of the shuffle and of the augmentation.
        repeat: repeat forever (step-based training).
        augmentation: None, or `{"crop_padding": int, "flip": bool}` (see `augment`); each
            image's randomness comes from `seed` and its position in the stream, so the
            same seed gives the same batches, however many threads decode them.
        deterministic: force a deterministic element order (None keeps tf.data's default).

    Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "black.png"
    >>> _ = path.write_bytes(tf.io.encode_png(tf.zeros([8, 8, 3], tf.uint8)).numpy())
    >>> files = image_files_to_predict([path, path])
    >>> images, labels = next(iter(image_dataset(files, (4, 4), batch_size=2)))
    >>> tuple(images.shape), float(images[0, 0, 0, 0]), labels.numpy().tolist()
    ((2, 4, 4, 3), -1.0, [0, 0])
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, got {batch_size}.")
    image_size = tuple(image_size)
    dataset, base_seed = numbered_files(files, shuffle, seed, repeat)

    @as_written
    def load(index, path_and_target):
        path, target = path_and_target
        image = decode_and_resize(tf.io.read_file(path), image_size)
        if augmentation:
            image = augment(image, tf.stack([base_seed, index]), **augmentation)
        return normalize(image, mean, std), target

    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).with_options(pipeline_options(deterministic)).prefetch(
        tf.data.AUTOTUNE)


# -- reading folders -------------------------------------------------------------------------
def check_bad_image_action(on_bad_image):
    if on_bad_image not in BAD_IMAGE_ACTIONS:
        raise ValueError(f"`on_bad_image` must be one of {BAD_IMAGE_ACTIONS}, got "
                         f"{on_bad_image!r}.")


def class_folders(split_folder):
    """The class folder names of a split folder, sorted (hidden folders left out)."""
    return sorted(path.name for path in Path(split_folder).iterdir()
                  if path.is_dir() and not path.name.startswith("."))


def image_paths(folder):
    """The image files directly in `folder` (by extension, any case), sorted, as strings."""
    return sorted(str(path) for path in Path(folder).iterdir()
                  if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS
                  and not path.name.startswith("."))


def is_image_folder(folder):
    """Whether `folder/train` holds class folders with images in them."""
    train = Path(folder) / "train"
    return train.is_dir() and any(image_paths(train / name) for name in class_folders(train))


def scan_images(paths):
    """Decodes every file once: `({path: (height, width)} of the readable ones, [the
    unreadable ones: missing, empty, truncated or not an image])`."""
    if not paths:
        return {}, []

    @as_written
    def probe(path):
        return path, tf.shape(decode_image(tf.io.read_file(path)))[:2]

    # The files `ignore_errors` drops are exactly the ones reported as unreadable.
    dataset = (tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string))
               .map(probe, num_parallel_calls=tf.data.AUTOTUNE)
               .ignore_errors().batch(1024))
    sizes = {}
    for names, shapes in dataset.as_numpy_iterator():
        sizes.update(zip((name.decode("utf-8") for name in names), map(tuple, shapes.tolist())))
    return sizes, [path for path in paths if path not in sizes]


def checked_image_files(paths, targets, class_names, source, on_bad_image, skippable=True):
    """`ImageFiles` of the readable `paths`; unreadable ones raise (naming them) or, with
    `on_bad_image="skip"`, are listed in `skipped`."""
    sizes, bad = scan_images(paths)
    if bad and on_bad_image == "error":
        shown = ", ".join(bad[:SHOWN_BAD_FILES]) + (
            f" and {len(bad) - SHOWN_BAD_FILES} more" if len(bad) > SHOWN_BAD_FILES else "")
        hint = (" or pass --skip-bad-images to leave them out (they are counted in the "
                "output)") if skippable else ""
        raise ValueError(f"{len(bad)} unreadable image(s) in {source} (empty, truncated, or "
                         f"not a JPEG or PNG): {shown}. Replace or remove them{hint}.")
    keep = [index for index, path in enumerate(paths) if path in sizes]
    return ImageFiles([paths[i] for i in keep], np.asarray([targets[i] for i in keep], "int32"),
                      list(class_names), source,
                      np.asarray([sizes[paths[i]] for i in keep], "int64").reshape(-1, 2),
                      tuple(bad))


def _split_classes(root, class_names):
    """The class folders of split folder `root`, checked against `class_names` (None: they
    are the training split's and become the class names)."""
    found = class_folders(root)
    strays = image_paths(root)
    if strays:
        raise ValueError(f"{strays[0]}: images must sit in a class folder; expected "
                         f"{EXPECTED_LAYOUT}.")
    if class_names is None:
        if len(found) < 2:
            raise ValueError(f"{root}: {len(found)} class folder(s) {found}; a classifier "
                             f"needs at least 2 ({EXPECTED_LAYOUT}).")
        empty = [name for name in found if not image_paths(root / name)]
        if empty:
            raise ValueError(f"{root / empty[0]}: class folder {empty[0]!r} holds no "
                             f".jpg/.jpeg/.png images; add some or remove the folder.")
        return found, found
    unknown = [name for name in found if name not in class_names]
    if unknown:
        raise ValueError(f"{root / unknown[0]}: class folder {unknown[0]!r} is not among the "
                         f"training classes {list(class_names)} (the classes come from the "
                         "train folder); rename or remove it.")
    return found, list(class_names)


def read_image_split(folder, split, class_names=None, on_bad_image="error"):
    """The `ImageFiles` of `folder/split/<class>/*.jpg|jpeg|png`, every file decoded once.

    Args:
        folder: the dataset folder.
        split: "train", "validation", "test", ...
        class_names: the model's classes; None takes this split's class folders, sorted
            (the training split's set the classes of a new model).
        on_bad_image: "error" stops at unreadable images, naming them; "skip" leaves them
            out, listed in `ImageFiles.skipped`.

    Raises:
        FileNotFoundError: the split folder does not exist.
        ValueError: a class folder outside `class_names`, fewer than 2 classes, a training
            class without images, images outside class folders, or unreadable images.

    Example:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ("cat", "dog"):
    ...     (root / "train" / name).mkdir(parents=True)
    ...     pixels = tf.zeros([4, 4, 3], tf.uint8)
    ...     _ = (root / "train" / name / "a.png").write_bytes(tf.io.encode_png(pixels).numpy())
    >>> files = read_image_split(root, "train")
    >>> files.class_names, files.targets.tolist(), files.most_common_size()
    (['cat', 'dog'], [0, 1], (4, 4))
    """
    check_bad_image_action(on_bad_image)
    root = Path(folder) / split
    if not root.is_dir():
        raise FileNotFoundError(f"Image split folder '{root}' does not exist; expected "
                                f"{EXPECTED_LAYOUT}.")
    found, class_names = _split_classes(root, class_names)
    paths, targets = [], []
    for class_id, name in enumerate(class_names):
        if name in found:
            files = image_paths(root / name)
            paths += files
            targets += [class_id] * len(files)
    if not paths:
        raise ValueError(f"{root}: no .jpg/.jpeg/.png images in its class folders; expected "
                         f"{EXPECTED_LAYOUT}.")
    return checked_image_files(paths, targets, class_names, str(root), on_bad_image)


def image_files_to_predict(paths, class_names=("",)):
    """`ImageFiles` of image files given one by one (placeholder class 0), each checked.

    Raises:
        FileNotFoundError: a file does not exist.
        ValueError: a file is not a readable image.
    """
    paths = [str(path) for path in paths]
    missing = [path for path in paths if not Path(path).is_file()]
    if missing:
        raise FileNotFoundError(f"Image file '{missing[0]}' does not exist.")
    return checked_image_files(paths, [0] * len(paths), class_names, "the images to predict",
                          "error", skippable=False)


# -- inside exported models -----------------------------------------------------------------
@keras.saving.register_keras_serializable(package="keras_mapping")
class ImagePreprocessor(keras.layers.Layer):
    """Encoded images (`tf.string [batch]`, JPEG or PNG) to the normalised float32 images
    `[batch, height, width, 3]` a model takes: `decode_and_resize`, then `normalize`. A
    TensorFlow-only layer, for exports (`.keras` files that take image bytes).

    Args:
        image_size: `(height, width)`.
        mean, std: per-channel normalisation of the [0, 1] pixels.
        **kwargs: base layer arguments.

    Call arguments:
        image_bytes: `tf.string [batch]`.

    Example:
    >>> png = tf.io.encode_png(tf.ones([2, 2, 3], tf.uint8) * 255)
    >>> ImagePreprocessor((2, 2))(tf.stack([png]))[0, 0, 0].numpy().tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, image_size, mean=DEFAULT_MEAN, std=DEFAULT_STD, **kwargs):
        super().__init__(**kwargs)
        self.image_size = tuple(image_size)
        self.mean, self.std = tuple(mean), tuple(std)
        # Strings go in as they are: Keras would otherwise try to cast them to floats.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    def call(self, image_bytes):
        return normalize(images_from_bytes(image_bytes, self.image_size), self.mean, self.std)

    def compute_output_spec(self, image_bytes):
        return keras.KerasTensor((image_bytes.shape[0], *self.image_size, 3), "float32")

    def get_config(self):
        config = super().get_config()
        config.update(image_size=list(self.image_size), mean=list(self.mean),
                      std=list(self.std))
        return config
