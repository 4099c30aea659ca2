import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pathlib import Path  # noqa: E402

import keras  # noqa: E402
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
