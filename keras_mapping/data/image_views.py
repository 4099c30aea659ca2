"""Unlabelled images into tf.data as two augmented views each, for `ImageSimCLR`.

The views use SimCLR's augmentations (Chen et al. 2020) at its CIFAR colour strength: a
random resized crop (20% to 100% of the area, where the paper's ImageNet setting takes 8%,
too little of a 32x32 image), a horizontal flip, colour jitter 80% of the time and grayscale
20% of the time. Every random choice is stateless, drawn from the seed and the image's
position in the stream, so the same seed gives the same batches.
"""

from pathlib import Path

import tensorflow as tf

from keras_mapping.data.images import (IMAGE_EXTENSIONS, check_bad_image_action,
                                       checked_image_files, decode_and_resize, normalize,
                                       numbered_files)
from keras_mapping.data.pipelines import pipeline_options
from keras_mapping.tracing import as_written

CROP_AREA = (0.2, 1.0)
CROP_ASPECT = (3 / 4, 4 / 3)
JITTER = {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1}
JITTER_PROBABILITY, GRAYSCALE_PROBABILITY = 0.8, 0.2


def unlabeled_images(folder, on_bad_image="error"):
    """`ImageFiles` of every image under `folder`, at any depth (class folders are
    allowed and ignored), sorted by path.

    Raises:
        FileNotFoundError: `folder` does not exist.
        ValueError: it holds no image, or an unreadable one (unless `on_bad_image` is
            "skip").
    """
    check_bad_image_action(on_bad_image)
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"Image folder '{root}' does not exist.")
    paths = sorted(str(path) for path in root.rglob("*")
                   if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()
                   and not any(part.startswith(".") for part in path.relative_to(root).parts))
    if not paths:
        raise ValueError(f"Image folder '{root}' holds no {'/'.join(IMAGE_EXTENSIONS)} file "
                         "at any depth.")
    return checked_image_files(paths, [0] * len(paths), [""], str(root), on_bad_image)


def _random_resized_crop(image, seed):
    size = tf.shape(image)[:2]
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed,
        area_range=CROP_AREA, aspect_ratio_range=CROP_ASPECT, max_attempts=10,
        use_image_if_no_bounding_boxes=True)
    crop = tf.slice(image, begin, crop_size)
    return tf.image.resize(crop, size, method="bilinear")


def _jitter(image, seeds):
    image = tf.image.stateless_random_brightness(image, JITTER["brightness"], seeds[0])
    low, high = 1 - JITTER["contrast"], 1 + JITTER["contrast"]
    image = tf.image.stateless_random_contrast(image, low, high, seeds[1])
    low, high = 1 - JITTER["saturation"], 1 + JITTER["saturation"]
    image = tf.image.stateless_random_saturation(image, low, high, seeds[2])
    return tf.image.stateless_random_hue(image, JITTER["hue"], seeds[3])


def _happens(probability, seed):
    return tf.random.stateless_uniform([], seed) < probability


def simclr_view(image, seed):
    """One random view of float [0, 1] `image` `[height, width, 3]`, same size, for an int64
    seed pair.

    Example:
    >>> image = tf.random.stateless_uniform([8, 8, 3], [1, 2])
    >>> seed = tf.constant([3, 4], tf.int64)
    >>> same = simclr_view(image, seed) == simclr_view(image, seed)
    >>> tuple(simclr_view(image, seed).shape), bool(tf.reduce_all(same))
    ((8, 8, 3), True)
    """
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 9))
    image = _random_resized_crop(image, seeds[0])
    image = tf.image.stateless_random_flip_left_right(image, seeds[1])
    image = tf.cond(_happens(JITTER_PROBABILITY, seeds[2]),
                    lambda: _jitter(image, seeds[3:7]), lambda: image)
    gray = tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(image))
    image = tf.where(_happens(GRAYSCALE_PROBABILITY, seeds[7]), gray, image)
    return tf.clip_by_value(image, 0.0, 1.0)


def contrastive_image_dataset(files, image_size, batch_size, mean, std, shuffle=True,
                              seed=None, repeat=False, deterministic=None):
    """Batches of `({"view_1", "view_2"}, targets)` for `ImageSimCLR`: two normalised views
    of each image and `range(batch)` twice as the targets. Batches are all full (the last
    partial one is dropped each pass: the loss compares images within a batch).

    Args:
        files: `ImageFiles` (their class ids are unused).
        image_size: `(height, width)` every image is resized to.
        batch_size: images per batch (each one's negatives are the others).
        mean, std: per-channel normalisation of the [0, 1] pixels.
        shuffle: shuffle the files each pass, with `seed`.
        seed: the seed of the shuffle and of the views.
        repeat: repeat forever (step-based training).
        deterministic: force a deterministic element order (None keeps tf.data's default).
    """
    if batch_size < 2:
        raise ValueError(f"`batch_size` must be at least 2 (the negatives are the rest of "
                         f"the batch), got {batch_size}.")
    image_size = tuple(image_size)
    dataset, base_seed = numbered_files(files, shuffle, seed, repeat)

    @as_written
    def views(index, path_and_target):
        path, _ = path_and_target
        image = decode_and_resize(tf.io.read_file(path), image_size)
        first, second = tf.unstack(tf.random.experimental.stateless_split(
            tf.stack([base_seed, index]), 2))
        return {"view_1": normalize(simclr_view(image, first), mean, std),
                "view_2": normalize(simclr_view(image, second), mean, std)}

    @as_written
    def with_targets(batch):
        positions = tf.range(tf.shape(batch["view_1"])[0], dtype=tf.int32)
        return batch, tf.concat([positions, positions], axis=0)

    dataset = dataset.map(views, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=True).map(with_targets)
    return dataset.with_options(pipeline_options(deterministic)).prefetch(tf.data.AUTOTUNE)
