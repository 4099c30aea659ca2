"""Image folders: classes from train, other splits checked against them, unreadable files
named (or skipped and counted), decoding shared with the exported graphs, seeded
augmentation."""

import numpy as np
import pytest
import tensorflow as tf

from keras_mapping.data.images import (ImagePreprocessor, decode_and_resize, image_dataset,
                                       normalize, read_image_split)
from keras_mapping.tasks import DataOptions, load_task_data
from keras_mapping.tasks.image_classification import ImageClassificationTask
from tests.helpers import write_image, write_image_folder

CLASSES = ["blue", "green", "red"]


@pytest.fixture
def folder(tmp_path):
    root = write_image_folder(tmp_path / "colours", counts=(("train", 4), ("validation", 2)))
    write_image(root / "train" / "red" / "large.PNG", (255, 0, 0),
                np.random.default_rng(9), size=20)  # resized; any case of suffix
    (root / "train" / "red" / "notes.txt").write_text("not an image, not read")
    return root


def test_classes_come_from_train_sorted_and_splits_follow_them(folder):
    train = read_image_split(folder, "train")
    assert train.class_names == CLASSES and len(train) == 13
    assert train.targets.tolist() == [0] * 4 + [1] * 4 + [2] * 5
    assert train.most_common_size() == (16, 16) and train.skipped == ()
    (folder / "validation" / "green").rename(folder / "validation" / ".hidden")
    validation = read_image_split(folder, "validation", train.class_names)
    assert sorted(set(validation.targets.tolist())) == [0, 2]  # a class may be absent


def test_a_class_folder_unknown_to_train_is_named(folder):
    write_image(folder / "validation" / "zebra" / "0.png", (9, 9, 9), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"validation/zebra: class folder 'zebra' is not among"):
        read_image_split(folder, "validation", CLASSES)
    with pytest.raises(FileNotFoundError, match="test"):
        read_image_split(folder, "test", CLASSES)


def test_unreadable_images_are_named_or_skipped_and_counted(folder):
    good = (folder / "train" / "blue" / "0.jpg").read_bytes()
    (folder / "train" / "blue" / "cut.jpg").write_bytes(good[: len(good) // 3])
    (folder / "train" / "green" / "empty.png").write_bytes(b"")
    (folder / "train" / "red" / "text.png").write_text("hello")
    with pytest.raises(ValueError, match="3 unreadable image") as error:
        read_image_split(folder, "train")
    for name in ("blue/cut.jpg", "green/empty.png", "red/text.png"):
        assert name in str(error.value)
    assert "--skip-bad-images" in str(error.value)
    kept = read_image_split(folder, "train", on_bad_image="skip")
    assert len(kept) == 13 and sorted(p.rsplit("/", 2)[-1] for p in kept.skipped) == \
        ["cut.jpg", "empty.png", "text.png"]
    task, splits = load_task_data(folder, DataOptions(skip_bad_images=True))
    assert task.report(np.zeros((len(splits["train"]), 3)), splits["train"])[
        "skipped_images"] == 3


def test_folders_are_detected_as_image_tasks(folder, tmp_path):
    task, splits = load_task_data(folder, DataOptions(image_preset="resnet20"))
    assert isinstance(task, ImageClassificationTask)
    assert task.class_names == CLASSES and task.image_size == (16, 16)
    assert task.mean == [0.5] * 3 and task.crop_padding == 2
    assert len(splits["validation"]) == 6
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "train.tsv").write_text("sentence\tlabel\na\t0\n")
    with pytest.raises(ValueError, match="holds no image folders"):
        load_task_data(tmp_path / "texts", DataOptions(task="image-classification"))
    with pytest.raises(ValueError, match="neither an image architecture"):
        load_task_data(folder, DataOptions(image_preset="minilm_l6"))


def test_pipeline_decodes_as_the_exported_graph_does(folder):
    files = read_image_split(folder, "train")
    images, labels = next(iter(image_dataset(files, (16, 16), batch_size=13)))
    assert labels.numpy().tolist() == files.targets.tolist()
    encoded = [tf.io.read_file(path) for path in files.paths]
    expected = normalize(tf.stack([decode_and_resize(e, (16, 16)) for e in encoded]),
                         (0.5,) * 3, (0.5,) * 3)
    np.testing.assert_array_equal(images.numpy(), expected.numpy())
    served = ImagePreprocessor((16, 16))(tf.stack(encoded))
    np.testing.assert_array_equal(images.numpy(), served.numpy())


def test_augmentation_is_seeded(folder):
    files = read_image_split(folder, "train")
    augmentation = {"crop_padding": 2, "flip": True}

    def first_batch(seed, augment=augmentation):
        data = image_dataset(files, (16, 16), batch_size=13, shuffle=True, seed=seed,
                             augmentation=augment)
        images, labels = next(iter(data))
        return images.numpy(), labels.numpy()

    images, labels = first_batch(3)
    again, labels_again = first_batch(3)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(labels, labels_again)
    plain, plain_labels = first_batch(3, augment=None)
    np.testing.assert_array_equal(labels, plain_labels)  # same order, other pixels
    assert not np.array_equal(images, plain)
    assert not np.array_equal(first_batch(4)[0], images)
