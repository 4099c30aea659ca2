"""Reading a dataset for a task: the split files as tables, their columns and task detected
from the training split (or given by a trained model), every split turned into examples."""

import os
from dataclasses import dataclass
from pathlib import Path

from keras_mapping.data.datasets import (DATA_DIR_VARIABLE, KNOWN_DATASETS, LOCAL_DATASETS,
                                         load_splits, split_file)
from keras_mapping.data.images import is_image_folder
from keras_mapping.data.layout import Columns, choose_columns, detect_task
from keras_mapping.data.readers import check_bad_bytes, read_rows
from keras_mapping.data.tag_schemes import scheme_name
from keras_mapping.data.token_files import find_token_splits, looks_like_token_file
from keras_mapping.tasks.classification import ClassificationTask
from keras_mapping.tasks.image_classification import ImageClassificationTask
from keras_mapping.tasks.multi_label import MultiLabelTask
from keras_mapping.tasks.regression import RegressionTask
from keras_mapping.tasks.token_classification import TokenClassificationTask, TokenReading

TASK_CLASSES = {task.name: task for task in (ClassificationTask, RegressionTask, MultiLabelTask,
                                             TokenClassificationTask, ImageClassificationTask)}
TASKS = tuple(TASK_CLASSES)
TOKEN_TASK = TokenClassificationTask.name
IMAGE_TASK = ImageClassificationTask.name
# Token datasets found by name under $KERAS_MAPPING_DATA_DIR.
TOKEN_DATASETS = ("conll2003",)


def task_from_config(config):
    """The task stored in a model directory's `task.json`."""
    name = config.get("task")
    if name not in TASK_CLASSES:
        raise ValueError(f"unknown task {name!r} in the model's task.json; expected one of "
                         f"{TASKS}")
    return TASK_CLASSES[name].from_config(config)


@dataclass(frozen=True)
class DataOptions:
    """How to read a dataset into a task; each field is the `finetune` flag of that name.

    Args:
        task: "classification", "regression" or "multi-label"; None detects it.
        text_column, text_pair_column, label_column: column names (None: detected).
        label_columns: the 0/1 columns of a multi-label task.
        label_delimiter: separates several labels in one column (multi-label).
        threshold: the multi-label decision threshold before any tuning.
        data_dir: overrides `$KERAS_MAPPING_DATA_DIR` (and TFDS's data folder).
        on_bad_bytes: "error" or "replace" for bytes that are not UTF-8.
        tag_column: the tag column of CoNLL files (negative counts from the end).
        tag_scheme: "iob1", "iob2" (also "bio") or "iobes" (also "bioes"): how tags are
            written; they are read into IOB2.
        strict_tags: refuse an `I-X` that continues no `X` entity instead of starting one.
        label_all_pieces: train a tag on every piece of a word, not only on its first.
        stride: pieces between window starts over sentences longer than the model (None:
            half a window).
        skip_bad_images: leave unreadable images out (counted) instead of stopping.
        image_size: the size images are resized to (an int for squares, or a pair); None:
            `image_preset`'s, else the training images' most common size.
        image_preset: the preset a new image model starts from (an architecture name or an
            image model directory), whose preprocessing its images take.
    """

    task: str | None = None
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str | None = None
    label_columns: tuple | None = None
    label_delimiter: str = ","
    threshold: float = 0.5
    data_dir: str | None = None
    on_bad_bytes: str = "error"
    tag_column: int = -1
    tag_scheme: str = "iob2"
    strict_tags: bool = False
    label_all_pieces: bool = False
    stride: int | None = None
    skip_bad_images: bool = False
    image_size: int | tuple | None = None
    image_preset: str | None = None

    def __post_init__(self):
        if self.task is not None and self.task not in TASKS:
            raise ValueError(f"`task` must be one of {TASKS}, got {self.task!r}.")
        if self.label_columns and self.task not in (None, "multi-label"):
            raise ValueError(f"--label-columns name the 0/1 columns of a multi-label task, "
                             f"not of --task {self.task}.")
        check_bad_bytes(self.on_bad_bytes)
        scheme_name(self.tag_scheme)
        if self.stride is not None and self.stride < 1:
            raise ValueError(f"`stride` must be at least 1, got {self.stride}.")

    def token_reading(self):
        return TokenReading(scheme_name(self.tag_scheme), self.tag_column, not self.strict_tags)


def _split_paths(dataset, splits, data_dir):
    """`{split: file}` of a local dataset, or None for a TFDS one."""
    name = str(dataset)
    if name in LOCAL_DATASETS:
        root = data_dir or os.environ.get(DATA_DIR_VARIABLE)
        paths = {split: Path(root) / name / f"{split}.tsv" for split in splits} if root else {}
        return paths if paths and all(path.is_file() for path in paths.values()) else None
    folder = Path(name).expanduser()
    if folder.is_dir():
        return {split: split_file(folder, split) for split in splits}
    return None


def _check_headers_agree(tables):
    (first, table), *others = tables.items()
    for split, other in others:
        if other.header != table.header:
            raise ValueError(
                f"{table.path} and {other.path} have different columns: {table.header} and "
                f"{other.header}. Every split needs the same header (columns are matched by "
                "name); rename the columns of one file.")


def _detected_task(table, options, label_names):
    columns = choose_columns(table, options.text_column, options.text_pair_column,
                             options.label_column, options.label_columns)
    kind = options.task or ("multi-label" if columns.label_columns else detect_task(
        [raw for _, raw in table.column(columns.label)], table.path, columns.label,
        options.label_delimiter))
    return TASK_CLASSES[kind].from_training_table(
        table, columns, delimiter=options.label_delimiter, threshold=options.threshold,
        label_names=label_names)


def _check_columns(task, table):
    columns = task.columns
    wanted = [columns.text, columns.text_pair, columns.label, *(columns.label_columns or ())]
    missing = [column for column in wanted if column is not None and column not in table.header]
    if missing:
        raise ValueError(f"{table.path}:1: the model reads the columns "
                         f"{[c for c in wanted if c]}, but {missing} are not among this file's "
                         f"columns {table.header}.")


def _tfds_task_data(dataset, splits, options, task):
    if (options.task not in (None, "classification") or options.text_pair_column
            or options.label_columns or (task and task.name != "classification")):
        raise ValueError(f"{dataset!r} is read through TensorFlow Datasets, which this tool "
                         "reads for single-text classification only; for pairs, regression or "
                         "multi-label, give a folder of train/validation files.")
    loaded = load_splits(dataset, splits, text_column=options.text_column,
                         label_column=options.label_column, data_dir=options.data_dir,
                         label_vocabulary=task.vocabulary if task else None,
                         on_bad_bytes=options.on_bad_bytes)
    first = loaded[splits[0]]
    task = task or ClassificationTask(
        Columns(options.text_column or "text", None, options.label_column or "label"),
        first.label_vocabulary)
    return task, loaded


def _token_paths(dataset, data_dir):
    """`{split: file}` of a folder of CoNLL or JSONL token files (a path, or a name in
    `TOKEN_DATASETS` under the data folder), or None when it holds no token data."""
    folder = Path(str(dataset)).expanduser()
    root = data_dir or os.environ.get(DATA_DIR_VARIABLE)
    if not folder.is_dir() and str(dataset) in TOKEN_DATASETS and root:
        folder = Path(root) / str(dataset)
    if not folder.is_dir():
        return None
    paths = find_token_splits(folder)
    return paths if "train" in paths and looks_like_token_file(paths["train"]) else None


def _token_task_data(dataset, paths, splits, options, task):
    if paths is None:
        raise ValueError(f"{dataset!r} holds no token-classification files: --task "
                         f"{TOKEN_TASK} reads a folder with train.txt/.conll (CoNLL columns, "
                         "the word first and the tag last) or train.jsonl "
                         '({"tokens": [...], "tags": [...]}), and validation.* beside it.')
    missing = [split for split in splits if split not in paths]
    if missing:
        raise FileNotFoundError(f"{dataset}: no token file for the split(s) {missing}; found "
                                f"{sorted(path.name for path in paths.values())}")
    read = {}
    if task is None:
        task, read["train"] = TokenClassificationTask.from_training_file(
            paths["train"], options.token_reading(), options.on_bad_bytes,
            label_all_pieces=options.label_all_pieces, stride=options.stride)
    return task, {split: task.checked(read[split]) if split in read
                  else task.examples(paths[split], options.on_bad_bytes) for split in splits}


def _image_task_data(dataset, splits, options, task):
    folder = Path(str(dataset)).expanduser()
    if not is_image_folder(folder):
        raise ValueError(f"{dataset!r} holds no image folders: --task {IMAGE_TASK} reads "
                         "DIR/train/<class>/*.jpg|jpeg|png and DIR/validation/<class>/... "
                         "beside it.")
    on_bad_image = "skip" if options.skip_bad_images else "error"
    read = {}
    if task is None:
        task, read["train"] = ImageClassificationTask.from_training_folder(
            folder, options.image_preset, options.image_size, on_bad_image)
    return task, {split: read[split] if split in read else
                  task.examples(folder, split, on_bad_image) for split in splits}


def load_task_data(dataset, options=DataOptions(), splits=("train", "validation"), task=None):
    """The task and its examples per split.

    Without `task`, the "train" split is read first: a folder whose `train/` holds class
    folders of images is an image-classification task with those classes; a folder of token
    files (CoNLL columns or JSONL tokens) is a token-classification task with the training
    split's tag set;
    otherwise its columns and labels decide the task (`keras_mapping.data.layout`) and its
    label set, which then encodes every other split. With `task` (a trained model's), each
    split is read with the task's columns and labels (or tags).

    Args:
        dataset: "sst2", "conll2003", a folder of `{split}.tsv|csv|jsonl` files, of token
            files (`{split}.txt|conll|jsonl`) or of images (`{split}/<class>/*.jpg|png`), or
            a TFDS name.
        options: `DataOptions`.
        splits: the splits to read.
        task: a trained model's task, or None.

    Returns:
        `(task, {split: examples})`.

    Raises:
        ValueError: files whose headers differ, columns or labels that do not fit (the
            message names the file, the line and the flag that settles it).
    """
    splits = (splits,) if isinstance(splits, str) else tuple(splits)
    wants_images = options.task == IMAGE_TASK or isinstance(task, ImageClassificationTask)
    if wants_images or (task is None and options.task is None
                        and is_image_folder(Path(str(dataset)).expanduser())):
        return _image_task_data(dataset, splits, options, task)
    wants_tokens = options.task == TOKEN_TASK or isinstance(task, TokenClassificationTask)
    if wants_tokens or (task is None and options.task is None):
        token_paths = _token_paths(dataset, options.data_dir)
        if wants_tokens or token_paths is not None:
            return _token_task_data(dataset, token_paths, splits, options, task)
    paths = _split_paths(dataset, splits, options.data_dir)
    if paths is None:
        return _tfds_task_data(dataset, splits, options, task)
    tables = {split: read_rows(path, on_bad_bytes=options.on_bad_bytes)
              for split, path in paths.items()}
    _check_headers_agree(tables)
    if task is None:
        known = KNOWN_DATASETS.get(LOCAL_DATASETS.get(str(dataset), ""))
        task = _detected_task(tables[splits[0]], options, known and known.label_names)
    for table in tables.values():
        _check_columns(task, table)
    return task, {split: task.examples(table) for split, table in tables.items()}
