"""The README's and the docstrings' `>>>` examples run and print what they show."""

import doctest
import importlib
import pkgutil

import pytest

import keras_mapping
from tests.conftest import REPO_ROOT

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(keras_mapping.__path__, "keras_mapping.")
)


def test_readme_examples():
    result = doctest.testfile(str(REPO_ROOT / "README.md"), module_relative=False,
                              optionflags=FLAGS)
    assert result.attempted > 10
    assert result.failed == 0


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=FLAGS)
    assert result.failed == 0
