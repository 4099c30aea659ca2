"""Train and validation splits by name: SST-2, a folder of files, or a TensorFlow Datasets name.

`load_splits("sst2")` reads GLUE's own `sst2/{split}.tsv` from `$KERAS_MAPPING_DATA_DIR` when
the file is there, and otherwise TFDS's `glue/sst2`. Every split is encoded with the training
split's label vocabulary, so ids mean the same thing in all of them.
"""

import os
import socket
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from keras_mapping.data.readers import (FORMATS, LabelVocabulary, check_bad_bytes, from_lists,
                                        read_table)
from keras_mapping.tracing import as_written

DATA_DIR_VARIABLE = "KERAS_MAPPING_DATA_DIR"


@dataclass(frozen=True)
class KnownDataset:
    """What the TFDS builder does not tell about a dataset we know.

    Args:
        text_column: the feature holding the text.
        label_names: names per label id, used for the local files too.
        validation_split: the TFDS split read as "validation" while the builder's split list
            is unknown (a dataset not prepared yet reports none).
        download_url: where TFDS downloads it from, when its builder config does not say
            (GLUE's configs have a `data_url`).
    """

    text_column: str
    label_names: tuple[str, ...] | None = None
    validation_split: str = "validation"
    download_url: str | None = None


KNOWN_DATASETS = {
    "glue/sst2": KnownDataset("sentence", label_names=("negative", "positive")),
    "imdb_reviews": KnownDataset(
        "text", validation_split="test",
        download_url="http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"),
}
SST2_LAYOUT = ("sst2/train.tsv and sst2/validation.tsv (GLUE's SST-2 files: a header line "
               "'sentence<TAB>label', then a sentence and its 0/1 label per line)")
# Short names read from `{data dir}/{name}/{split}.tsv` when present, else from TFDS.
LOCAL_DATASETS = {"sst2": "glue/sst2"}


def choose_tfds_split(split, available, known=None):
    """The TFDS split to read for `split`: "validation" becomes "test" where a dataset has no
    validation split (imdb_reviews).

    Args:
        split: the split asked for.
        available: the builder's split names; when empty, `known` decides.
        known: the dataset's `KnownDataset`, if any.

    Example:
    >>> choose_tfds_split("validation", ["train", "test", "unsupervised"])
    'test'
    >>> choose_tfds_split("validation", [], KNOWN_DATASETS["imdb_reviews"])
    'test'
    """
    if split != "validation":
        return split
    if available:
        return next((name for name in ("validation", "test") if name in available), split)
    return known.validation_split if known else split


def _unknown_dataset(name, error):
    tfds_says = str(error).splitlines()[0].rstrip(": ") if str(error) else type(error).__name__
    return ValueError(
        f"Unknown dataset {name!r}: expected {' or '.join(map(repr, LOCAL_DATASETS))}, a folder "
        f"holding train.* and validation.* files ({', '.join(sorted(FORMATS))}), or a TensorFlow "
        f"Datasets name such as 'glue/sst2' or 'imdb_reviews'. No folder {name!r} exists, and "
        f"TFDS says: {tfds_says}")


def _unreachable(url, timeout=3.0):
    """Why `url`'s host (or the proxy the environment sets for it) takes no connection within
    `timeout` seconds, or None when it does."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname):
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    address = (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    try:
        socket.create_connection(address, timeout=timeout).close()
    except OSError as error:
        return f"{address[0]}:{address[1]} is unreachable ({type(error).__name__}: {error})"
    return None


def _check_downloadable(name, builder, known, missing_local):
    """Fails at once, with what is missing and how to provide it, when TFDS would have to
    download `name` and cannot reach its source: TFDS itself retries ten times with back-off,
    minutes, before giving up offline. A source we do not know is left to TFDS."""
    url = (getattr(builder.builder_config, "data_url", None)
           or (known.download_url if known else None))
    problem = _unreachable(url) if url else None
    if problem is None:
        return
    local = (f"{missing_local}. " if missing_local else "")
    provide = (f"point --data-dir (data_dir=) or ${DATA_DIR_VARIABLE} at a folder holding "
               f"{SST2_LAYOUT}, or " if missing_local else
               "read local files instead (a folder of train/validation files), or ")
    raise FileNotFoundError(
        f"{local}TFDS's {name!r} is not prepared in {builder.data_dir}, and downloading it "
        f"from {url} fails: {problem}. To provide the data, {provide}run where the network "
        f"reaches that host, so that TFDS downloads and prepares it (or prepare it elsewhere "
        f"and copy TFDS's data folder here, passing it as --data-dir or data_dir=).")


def _tfds_reader(name, text_column, label_column, data_dir, max_examples, missing_local=None):
    """Returns `read(split, vocabulary)` for the TFDS dataset `name`, prepared in `data_dir`;
    `missing_local` says which local copy was looked for first, if any."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except (ValueError, AssertionError) as error:  # TFDS's unknown name, config or version
        raise _unknown_dataset(name, error) from None
    known = KNOWN_DATASETS.get(name)
    # (is_prepared() warns about a folder that does not exist yet.)
    if not (builder.data_path.exists() and builder.is_prepared()):
        _check_downloadable(name, builder, known, missing_local)
    try:
        builder.download_and_prepare()
    except Exception as error:  # network, disk and missing-package failures get one advice
        raise FileNotFoundError(
            f"TFDS could not download or prepare {name!r} in {builder.data_dir} "
            f"({type(error).__name__}: {error}). Prepare it where you have network access and "
            "pass data_dir=, or read local files instead (a folder of train/validation files, "
            f"or ${DATA_DIR_VARIABLE}/sst2/*.tsv for 'sst2').") from error
    features = builder.info.features
    candidates = ([text_column] if text_column else [known.text_column] if known
                  else ["sentence", "text"])
    text_key = next((key for key in candidates if key in features.keys()), None)
    label_key = label_column or "label"
    for role, key in (("text", text_key or candidates[0]), ("label", label_key)):
        if key not in features.keys():
            raise ValueError(f"{name} has no {role} feature {key!r}; its features are "
                             f"{sorted(features.keys())}; choose one with {role}_column=")
    label_names = (known and known.label_names) or getattr(features[label_key], "names", None)

    def read(split, vocabulary):
        tfds_split = choose_tfds_split(split, list(builder.info.splits), known)
        examples = builder.as_dataset(split=tfds_split).map(
            as_written(lambda example: (example[text_key], example[label_key])))
        if max_examples is not None:  # stops reading early; load_splits cuts files the same way
            examples = examples.take(max_examples)
        texts, labels = [], []
        for text_batch, label_batch in tfds.as_numpy(examples.batch(1024)):
            texts.extend(text.decode("utf-8") for text in text_batch)
            labels.extend(label_batch.tolist())
        if vocabulary is None and label_names:
            vocabulary = LabelVocabulary.from_names(label_names)
        return from_lists(texts, labels, label_vocabulary=vocabulary,
                          source=f"{name} (TFDS split {tfds_split!r})")

    return read


def _local_or_tfds_reader(name, text_column, label_column, data_dir, max_examples,
                          on_bad_bytes):
    root = data_dir or os.environ.get(DATA_DIR_VARIABLE)
    tfds_read = None

    def read(split, vocabulary):
        nonlocal tfds_read
        path = Path(root) / name / f"{split}.tsv" if root else None
        if path is not None and path.is_file():
            return read_table(path, text_column, label_column, label_vocabulary=vocabulary,
                              on_bad_bytes=on_bad_bytes)
        if tfds_read is None:
            missing = (f"No local copy of {name!r}: {path} does not exist" if path else
                       f"No local copy of {name!r}: neither --data-dir (data_dir=) nor "
                       f"${DATA_DIR_VARIABLE} is set")
            tfds_read = _tfds_reader(LOCAL_DATASETS[name], text_column, label_column, data_dir,
                                     max_examples, missing_local=missing)
        return tfds_read(split, vocabulary)

    return read


def split_file(folder, split):
    found = [folder / f"{split}{suffix}" for suffix in sorted(FORMATS)
             if (folder / f"{split}{suffix}").is_file()]
    if not found:
        raise FileNotFoundError(f"{folder}: no file for the {split!r} split; expected one of "
                                f"{', '.join(split + suffix for suffix in sorted(FORMATS))}")
    if len(found) > 1:
        raise ValueError(f"{folder}: {len(found)} files for the {split!r} split "
                         f"({', '.join(path.name for path in found)}); keep only one")
    return found[0]


def load_splits(dataset, splits=("train", "validation"), text_column=None, label_column=None,
                data_dir=None, max_examples=None, label_vocabulary=None, on_bad_bytes="error"):
    """Loads labeled text splits of a dataset given by name or folder.

    `dataset` is one of:

    - `"sst2"`: `{data_dir}/sst2/{split}.tsv` when that file exists, where `data_dir`
      defaults to `$KERAS_MAPPING_DATA_DIR`; otherwise TFDS's `glue/sst2`. Labels are named
      "negative" and "positive" either way.
    - a folder holding one `{split}.tsv`, `.csv` or `.jsonl` per split (see `read_table`).
    - a TensorFlow Datasets name such as `"imdb_reviews"` or `"glue/sst2"`, prepared in
      `data_dir` (TFDS's default folder when None; the environment variable is not used).
      "validation" reads the "test" split where there is no validation split; label names
      come from the builder's ClassLabel.

    The "train" split is read first and its label vocabulary encodes every other split.

    Args:
        dataset: "sst2", a folder path or a TFDS name.
        splits: the splits to return, e.g. `("train", "validation")` or `("validation",)`.
        text_column: column or feature holding the text (default: see `read_table`; for TFDS
            "sentence" or "text").
        label_column: column or feature holding the label (default "label").
        data_dir: where the data lives: the folder holding `sst2/` for "sst2" (overriding
            `$KERAS_MAPPING_DATA_DIR`), and TFDS's data folder.
        max_examples: keep only the first `max_examples` rows of each split, for quick runs
            (files are still read and checked in full; TFDS stops reading early).
        label_vocabulary: a `LabelVocabulary` for every split, e.g. the one stored with a
            trained model; defaults to the train split's.
        on_bad_bytes: for files: "error" stops at undecodable bytes, naming the file and
            line; "replace" reads them as U+FFFD.

    Returns:
        A dict from split name to `LabeledTexts`, in the order of `splits`.

    Raises:
        ValueError: an unknown dataset, or malformed data.
        FileNotFoundError: a split file is missing from the folder, or TFDS cannot prepare
            the dataset.

    Example:
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "train.csv").write_text('text,label\\n"fun, light",pos\\nslow,neg\\n')
    >>> _ = (folder / "validation.jsonl").write_text('{"text": "dull", "label": "neg"}\\n')
    >>> data = load_splits(folder)
    >>> data["train"].labels, data["validation"].labels, data["validation"].label_names
    ([1, 0], [0], ['neg', 'pos'])
    """
    if max_examples is not None and (not isinstance(max_examples, int) or max_examples < 1):
        raise ValueError(f"max_examples must be a positive integer or None, not {max_examples!r}")
    check_bad_bytes(on_bad_bytes)
    if isinstance(splits, str):  # one split name, not a sequence of one-letter splits
        splits = (splits,)
    name = str(dataset)
    if name in LOCAL_DATASETS:
        read = _local_or_tfds_reader(name, text_column, label_column, data_dir, max_examples,
                                     on_bad_bytes)
        label_vocabulary = label_vocabulary or LabelVocabulary.from_names(
            KNOWN_DATASETS[LOCAL_DATASETS[name]].label_names)
    elif Path(name).expanduser().is_dir():
        folder = Path(name).expanduser()

        def read(split, vocabulary):
            return read_table(split_file(folder, split), text_column, label_column,
                              label_vocabulary=vocabulary, on_bad_bytes=on_bad_bytes)
    else:
        read = _tfds_reader(name, text_column, label_column, data_dir, max_examples)
    loaded = {}
    for split in sorted(splits, key=lambda split: split != "train"):
        loaded[split] = read(split, label_vocabulary)
        label_vocabulary = loaded[split].label_vocabulary
    return {split: loaded[split] if max_examples is None else loaded[split].head(max_examples)
            for split in splits}
