import pytest

from keras_mapping.data import datasets, load_splits
from keras_mapping.data.datasets import DATA_DIR_VARIABLE, KNOWN_DATASETS, choose_tfds_split

tfds = pytest.importorskip("tensorflow_datasets")
tf = pytest.importorskip("tensorflow")

TRAIN_TSV = "sentence\tlabel\nit 's \"good\"\t1\nbad\t0\nfine\t1\n"
VALIDATION_TSV = "sentence\tlabel\nmeh\t0\n"


@pytest.fixture(autouse=True)
def reachable_sources(monkeypatch):
    """TFDS's download sources answer the reachability probe: the mocked downloads below
    stand in for the network, which no test here touches (tests/test_cli_first_run.py covers
    an unreachable source)."""
    monkeypatch.setattr(datasets, "_unreachable", lambda url, timeout=3.0: None)


@pytest.fixture
def sst2_folder(write, tmp_path):
    write("sst2/train.tsv", TRAIN_TSV)
    write("sst2/validation.tsv", VALIDATION_TSV)
    return tmp_path


def test_sst2_reads_the_tsv_under_the_environment_variable(sst2_folder, monkeypatch):
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(sst2_folder))
    data = load_splits("sst2")
    assert list(data) == ["train", "validation"]
    assert data["train"].texts == ['it \'s "good"', "bad", "fine"]
    assert data["train"].label_names == ["negative", "positive"]
    assert data["validation"].labels == [0]
    assert data["validation"].label_names == ["negative", "positive"]
    assert data["validation"].source == str(sst2_folder / "sst2" / "validation.tsv")


def test_data_dir_overrides_the_environment_variable(sst2_folder, monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(tmp_path / "elsewhere"))
    data = load_splits("sst2", splits="validation", data_dir=sst2_folder)
    assert list(data) == ["validation"]
    assert data["validation"].texts == ["meh"]


def test_max_examples_keeps_the_first_rows(sst2_folder):
    data = load_splits("sst2", data_dir=sst2_folder, max_examples=2)
    assert data["train"].texts == ['it \'s "good"', "bad"]
    assert data["validation"].texts == ["meh"]
    with pytest.raises(ValueError, match="max_examples must be a positive integer"):
        load_splits("sst2", data_dir=sst2_folder, max_examples=0)


def test_sst2_label_outside_negative_positive_names_the_line(write, sst2_folder):
    write("sst2/train.tsv", TRAIN_TSV + "odd\t2\n")
    with pytest.raises(ValueError, match=r"train\.tsv:5: label '2' is not in the label set"):
        load_splits("sst2", data_dir=sst2_folder)


def test_folder_splits_share_the_train_vocabulary(write, tmp_path):
    write("mine/train.csv", 'review,label\n"long, slow",neg\nfun,pos\nwow,wow\n')
    write("mine/validation.jsonl", '{"review": "great", "label": "pos"}\n')
    data = load_splits(tmp_path / "mine", splits=("validation", "train"))
    assert list(data) == ["validation", "train"]
    assert data["train"].label_names == ["neg", "pos", "wow"]
    assert data["validation"].labels == [1]  # alone it would be label 0 of ["pos"]
    assert data["validation"].label_names == ["neg", "pos", "wow"]


def test_folder_validation_label_unseen_in_train(write, tmp_path):
    write("mine/train.tsv", "text\tlabel\na\tneg\n")
    write("mine/validation.tsv", "text\tlabel\nb\tneg\nc\tpos\n")
    with pytest.raises(ValueError, match=r"validation\.tsv:3: label 'pos' is not in the label"):
        load_splits(str(tmp_path / "mine"))


def test_folder_with_a_missing_or_ambiguous_split(write, tmp_path):
    write("mine/train.tsv", "text\tlabel\na\t0\n")
    with pytest.raises(FileNotFoundError, match=r"mine: no file for the 'validation' split"):
        load_splits(tmp_path / "mine")
    write("mine/validation.tsv", "text\tlabel\na\t0\n")
    write("mine/validation.jsonl", '{"text": "a", "label": 0}\n')
    with pytest.raises(ValueError, match=r"mine: 2 files for the 'validation' split"):
        load_splits(tmp_path / "mine")


def test_unknown_name_lists_what_is_accepted():
    with pytest.raises(ValueError, match=r"Unknown dataset 'no_such_dataset': expected 'sst2', a "
                                         r"folder .* or a TensorFlow Datasets name"):
        load_splits("no_such_dataset")
    with pytest.raises(ValueError, match=r"Unknown dataset 'glue/nope'.*BuilderConfig nope"):
        load_splits("glue/nope")


def test_choose_tfds_split():
    assert choose_tfds_split("validation", ["train", "validation", "test"]) == "validation"
    assert choose_tfds_split("validation", ["train", "test"]) == "test"
    assert choose_tfds_split("train", ["train", "test"]) == "train"
    assert choose_tfds_split("validation", [], KNOWN_DATASETS["imdb_reviews"]) == "test"
    assert choose_tfds_split("validation", []) == "validation"


def tfds_rows(name, split, text_feature):
    examples = tfds.as_numpy(tfds.load(name, split=split))
    rows = [(example[text_feature].decode("utf-8"), int(example["label"]))
            for example in examples]
    return [text for text, _ in rows], [label for _, label in rows]


@pytest.mark.parametrize("name, text_feature, label_names, validation_split", [
    ("glue/sst2", "sentence", ["negative", "positive"], "validation"),
    ("imdb_reviews", "text", ["neg", "pos"], "test"),
])
def test_tfds_texts_labels_and_names_come_through(name, text_feature, label_names,
                                                  validation_split):
    with tfds.testing.mock_data(num_examples=6):
        data = load_splits(name)
        texts, labels = tfds_rows(name, validation_split, text_feature)
    validation = data["validation"]
    assert (validation.texts, validation.labels) == (texts, labels)
    assert len(data["train"]) == 6
    assert validation.label_names == label_names == data["train"].label_names
    assert validation.source == f"{name} (TFDS split {validation_split!r})"


def test_sst2_falls_back_to_tfds_without_local_files(tmp_path):
    with tfds.testing.mock_data(num_examples=5):
        data = load_splits("sst2", data_dir=tmp_path, max_examples=3)
    assert [len(split) for split in data.values()] == [3, 3]
    assert data["train"].label_names == ["negative", "positive"]
    assert data["train"].source == "glue/sst2 (TFDS split 'train')"


def test_tfds_unlabeled_split_is_an_error():
    def unlabeled(builder, split, **kwargs):
        return tf.data.Dataset.from_tensor_slices(
            {"sentence": ["a", "b"], "label": tf.constant([-1, -1], tf.int64),
             "idx": tf.constant([0, 1], tf.int32)})

    with tfds.testing.mock_data(as_dataset_fn=unlabeled):
        with pytest.raises(ValueError, match=r"glue/sst2 \(TFDS split 'test'\), example 0: "
                                             r"label '-1' is not in the label set"):
            load_splits("glue/sst2", splits=("test",))


def test_tfds_missing_feature():
    with tfds.testing.mock_data(num_examples=2):
        with pytest.raises(ValueError, match=r"imdb_reviews has no text feature 'review'; its "
                                             r"features are \['label', 'text'\]"):
            load_splits("imdb_reviews", text_column="review")


def test_tfds_preparation_failure_gives_advice(monkeypatch, tmp_path):
    def offline(builder, *args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    with pytest.raises(FileNotFoundError, match=r"TFDS could not download or prepare "
                                                r"'glue/sst2' .*network is unreachable"):
        load_splits("sst2", data_dir=tmp_path)


def test_real_sst2_by_name(shared):
    data = load_splits("sst2", data_dir=shared / "data")
    assert [len(split) for split in data.values()] == [67_349, 872]
    validation = data["validation"]
    assert (validation.labels.count(0), validation.labels.count(1)) == (428, 444)
    assert validation.label_names == ["negative", "positive"]
