"""Fixtures of the data tests: small files written into the test's temporary folder."""

import pytest


@pytest.fixture
def write(tmp_path):
    """`write(name, content)` writes text (UTF-8) or bytes to `tmp_path / name`, returns it."""

    def write_file(name, content):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return path

    return write_file
