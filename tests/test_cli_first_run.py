"""What a new user meets first: a quiet command line, errors that still show, and an offline
`--dataset sst2` without the local copy that fails at once with what to do."""

import os
import re
import socket
import subprocess
import time

import pytest

from keras_mapping.cli.main import main
from keras_mapping.cli.startup import _drop_startup_lines
from tests.helpers import cli_command

# TensorFlow 2.21's start-up lines on a CPU machine, and any glog INFO/WARNING line.
STARTUP_NOISE = re.compile(r"absl::InitializeLog|oneDNN custom operations|Could not find cuda "
                           r"drivers|cpu_feature_guard|To enable the following instructions"
                           r"|^[IW]\d{4} \d\d:\d\d:\d\d", re.MULTILINE)


def run_cli(*arguments, **environment):
    """`python -m keras_mapping.cli.main ARGUMENTS` in a fresh process: TensorFlow starts
    there, as for a user. `environment` adds variables; None removes one."""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    for name, value in environment.items():
        env.pop(name, None) if value is None else env.__setitem__(name, value)
    return subprocess.run(cli_command(*arguments), env=env, capture_output=True, text=True,
                          timeout=300)


def test_commands_print_no_tensorflow_startup_lines():
    # TF_CPP_MIN_LOG_LEVEL unset, as for a new user: the command quiets TensorFlow itself.
    result = run_cli("presets", TF_CPP_MIN_LOG_LEVEL=None)
    assert result.returncode == 0, result.stderr
    assert "minilm_l6" in result.stdout
    assert not STARTUP_NOISE.search(result.stderr), result.stderr


def test_errors_still_reach_stderr():
    # The setting the issue was reported with; the error comes after TensorFlow's import.
    result = run_cli("finetune", "--batch-size", "0", TF_CPP_MIN_LOG_LEVEL="3")
    assert result.returncode == 2
    assert "keras-mapping finetune: error: Invalid `batch_size`: 0." in result.stderr
    assert not STARTUP_NOISE.search(result.stderr), result.stderr


def test_startup_filter_keeps_what_is_not_below_the_level():
    captured = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1796143239.200842    5285 port.cc:153] oneDNN custom operations are on.\n"
        "W0000 00:00:1796143239.201205    5285 cudart_stub.cc:31] Could not find cuda drivers\n"
        "I0000 00:00:1796143239.980897    5285 cpu_feature_guard.cc:227] This TensorFlow binary\n"
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild.\n"
        "E0000 00:00:1796143240.000001    5285 cuda_dnn.cc:8] Unable to register cuDNN factory\n"
        "F0000 00:00:1796143240.000002    5285 core.cc:1] Check failed: something real\n"
        "/x/y.py:3: UserWarning: a Python warning during the import\n")
    assert _drop_startup_lines(captured, 3) == (
        "F0000 00:00:1796143240.000002    5285 core.cc:1] Check failed: something real\n"
        "/x/y.py:3: UserWarning: a Python warning during the import\n")
    assert _drop_startup_lines(captured, 2).startswith(
        "E0000 00:00:1796143240.000001    5285 cuda_dnn.cc:8] Unable to register cuDNN")


@pytest.fixture
def offline(monkeypatch):
    """No network: every connection fails at once, and a TFDS download fails the test."""
    import tensorflow_datasets as tfds

    def refuse(*args, **kwargs):
        raise OSError("[Errno 101] Network is unreachable")

    def download(*args, **kwargs):
        pytest.fail("TFDS was asked to download although its source is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", download)


def test_sst2_without_the_local_copy_fails_at_once_offline(offline, tmp_path, capsys):
    started = time.monotonic()
    code = main(["finetune", "--dataset", "sst2", "--data-dir", str(tmp_path),
                 "--out", str(tmp_path / "model"), "--verbose", "0"])
    assert time.monotonic() - started < 10  # TFDS's own retries took 3.5 minutes
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("keras-mapping finetune: error: No local copy of 'sst2': "
                            f"{tmp_path / 'sst2' / 'train.tsv'} does not exist. TFDS's "
                            f"'glue/sst2' is not prepared in {tmp_path}")
    for advice in ("dl.fbaipublicfiles.com:443 is unreachable", "Network is unreachable",
                   "point --data-dir (data_dir=) or $KERAS_MAPPING_DATA_DIR at a folder holding "
                   "sst2/train.tsv and sst2/validation.tsv", "run where the network reaches"):
        assert advice in error
    assert list(tmp_path.iterdir()) == []  # nothing half-downloaded left behind


def test_sst2_message_names_the_environment_variable_folder(offline, tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    from keras_mapping.data import load_splits

    monkeypatch.setenv("KERAS_MAPPING_DATA_DIR", str(tmp_path))
    # TFDS's own folder (no data_dir=) is the user's; it may hold a prepared copy elsewhere.
    monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda builder: False)
    with pytest.raises(FileNotFoundError, match=re.escape(
            f"No local copy of 'sst2': {tmp_path / 'sst2' / 'train.tsv'} does not exist.")):
        load_splits("sst2")
    monkeypatch.delenv("KERAS_MAPPING_DATA_DIR")
    with pytest.raises(FileNotFoundError, match=r"No local copy of 'sst2': neither --data-dir "
                                                r"\(data_dir=\) nor \$KERAS_MAPPING_DATA_DIR"):
        load_splits("sst2")
