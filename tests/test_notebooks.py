"""The notebooks in notebooks/ are committed clean and run top to bottom in small mode."""

import json
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO_ROOT, shared_dir

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
COLAB_URL = ("https://colab.research.google.com/github/keras-mapping/keras-mapping/blob/main/"
             "notebooks/{}")
COLAB_INSTALL = '%pip install -q "keras-mapping @ git+https://github.com/keras-mapping/'
KERNEL_NAME = "keras-mapping-tests"
CELL_TIMEOUT_SECONDS = 300
NOTEBOOK_IDS = [path.stem for path in NOTEBOOKS]


def read(path):
    return nbformat.read(path, as_version=4)


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NOTEBOOK_IDS)
def test_notebook_is_committed_valid_and_without_outputs(path):
    notebook = read(path)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {index} has stored outputs"
            assert cell.execution_count is None, f"{path.name} cell {index} was executed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NOTEBOOK_IDS)
def test_notebook_opens_with_colab_badge_and_colab_only_install(path):
    badge, setup = read(path).cells[:2]
    assert badge.cell_type == "markdown"
    assert "colab-badge.svg" in badge.source
    assert f"]({COLAB_URL.format(path.name)})" in badge.source
    assert setup.cell_type == "code"
    assert 'if "google.colab" in sys.modules:\n    ' + COLAB_INSTALL in setup.source
    assert 'SMALL = os.environ.get("KERAS_MAPPING_NOTEBOOK_SMALL") == "1"' in setup.source


@pytest.fixture
def kernel_of_this_interpreter(tmp_path, monkeypatch):
    """A kernelspec that starts this very interpreter, found first on JUPYTER_PATH, so the
    notebooks run against the environment under test whatever else is installed."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "keras-mapping tests", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL_NAME


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NOTEBOOK_IDS)
def test_notebook_runs_in_small_mode(path, tmp_path, monkeypatch, kernel_of_this_interpreter):
    notebook = read(path)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(
        f"import sys\nassert sys.executable == {sys.executable!r}, sys.executable"))
    monkeypatch.setenv("KERAS_MAPPING_NOTEBOOK_SMALL", "1")
    data_dir = Path(os.environ.get("KERAS_MAPPING_DATA_DIR") or shared_dir() / "data")
    monkeypatch.setenv("KERAS_MAPPING_DATA_DIR", str(data_dir))
    uses_sst2 = any('"sst2"' in cell.source for cell in notebook.cells)
    if uses_sst2 and not (data_dir / "sst2" / "train.tsv").is_file():
        pytest.skip(f"SST-2 is absent from {data_dir}; the notebook would download it")
    workdir = tmp_path / "run"
    workdir.mkdir()
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_SECONDS,
                            kernel_name=kernel_of_this_interpreter,
                            resources={"metadata": {"path": str(workdir)}})
    started = time.time()
    client.execute()
    print(f"{path.name}: {time.time() - started:.1f} s")
    images = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if "image/png" in output.get("data", {})]
    if any("keras_mapping.viz" in cell.source for cell in notebook.cells):
        assert images, f"{path.name} shows no figure"
    # Outputs go to the working directory, never into the checkout.
    assert (workdir / "saved_models" / "notebooks").is_dir()
