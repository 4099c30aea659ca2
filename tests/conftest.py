import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# One thread per TensorFlow op, in this process and the ones tests start (CLI runs, workers,
# notebook kernels): `make test` runs two workers on two cores, and tiny models gain nothing
# from splitting an op. Three tiny `finetune` runs took 33 s (32 s of CPU) with TensorFlow's
# default of one thread per core, 27 s (25 s of CPU) with one.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir():
    """`../shared` beside the checkout, or `$KERAS_MAPPING_SHARED_DIR`."""
    return Path(os.environ.get("KERAS_MAPPING_SHARED_DIR", REPO_ROOT.parent / "shared"))


@pytest.fixture
def shared():
    directory = shared_dir()
    if not directory.is_dir():
        pytest.skip(f"shared data folder {directory} is absent on this machine")
    return directory


@pytest.fixture(autouse=True)
def reset_keras_state():
    """Each test starts with the float32 policy and a fixed seed."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(1234)
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture(scope="session")
def tiny_preset(tmp_path_factory):
    """A 2-layer, 16-wide BERT in the BERT layout, with the real uncased vocabulary."""
    from keras_mapping.models import BertBackbone
    from keras_mapping.tokenizers import BertTokenizer

    directory = tmp_path_factory.mktemp("presets") / "tiny_bert"
    # Its own seed: weights independent of which test happens to create it first.
    keras.utils.set_random_seed(20261127)
    backbone = BertBackbone(vocabulary_size=30522, num_layers=2, num_heads=2, hidden_dim=16,
                            intermediate_dim=32, max_sequence_length=64)
    backbone.save_to_preset(directory, tokenizer=BertTokenizer.from_preset("minilm_l6"))
    return directory


def sentiment_rows(count, seed):
    rng = np.random.default_rng(seed)
    fillers = ["the film", "this plot", "a story", "the acting", "its ending", "the cast"]
    rows = []
    for _ in range(count):
        label = int(rng.integers(0, 2))
        word = ["awful", "wonderful"][label]
        rows.append((f"{rng.choice(fillers)} was {word} .", label))
    return rows


@pytest.fixture(scope="session")
def tiny_resnet_preset(tmp_path_factory):
    """A CIFAR-style ResNet of two one-block stages, 8 and 16 wide, in the Hugging Face
    layout: for tests that train an image model several times (kill and resume), where
    ResNet-20's 19 convolutions cost seconds of tracing per run."""
    from keras_mapping.models import ResNetBackbone

    directory = tmp_path_factory.mktemp("presets") / "tiny_resnet"
    keras.utils.set_random_seed(20261202)
    ResNetBackbone(embedding_size=8, hidden_sizes=(8, 16), depths=(1, 1), layer_type="basic",
                   stem="cifar").save_to_preset(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A folder dataset (train.tsv, validation.tsv) whose label is one word of the text."""
    folder = tmp_path_factory.mktemp("data") / "toy_sentiment"
    folder.mkdir()
    for split, count, seed in (("train", 96, 0), ("validation", 32, 1)):
        lines = ["sentence\tlabel"] + [f"{text}\t{label}"
                                       for text, label in sentiment_rows(count, seed)]
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_preset, tiny_dataset, tmp_path_factory):
    """A `finetune` model directory of the tiny preset trained on the tiny dataset."""
    from keras_mapping.training import FinetuneConfig, finetune

    out = tmp_path_factory.mktemp("models") / "tiny_classifier"
    finetune(FinetuneConfig(preset=str(tiny_preset), dataset=str(tiny_dataset), out=str(out),
                            epochs=6, batch_size=16, learning_rate=5e-3, max_length=32,
                            dropout=0.0, freeze_embeddings=False, evaluations_per_epoch=1,
                            warmup_ratio=0.0, precision="fp32"),
             verbose=0, print_fn=lambda *_: None)
    return out


# The slowest files (minutes of CPU each on the machines we meet), longest first. `make test`
# hands whole files to its two workers in collection order (--no-loadscope-reorder), so
# starting these first keeps one worker from finishing a long file alone at the end.
# pytest-xdist's own order (most tests first) put them last.
SLOWEST_FILES = (
    "test_notebooks.py", "tasks/test_task_runs.py", "training/test_pretrain.py",
    "training/test_multi_worker.py", "training/test_distribute.py",
    "training/test_reliability.py", "tasks/test_image_transfer.py",
    "training/test_finetune.py", "export/test_quantize.py", "tasks/test_image_task.py",
    "export/test_export.py", "models/test_bert.py",
)


def pytest_collection_modifyitems(items):
    def rank(item):
        path = item.path.relative_to(REPO_ROOT / "tests").as_posix()
        return SLOWEST_FILES.index(path) if path in SLOWEST_FILES else len(SLOWEST_FILES)

    items.sort(key=rank)  # stable: the other files, and each file's tests, keep their order
