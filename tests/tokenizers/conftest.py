"""Fixtures of the tokenizer tests: the reference token ids and the MiniLM tokenizer."""

import json

import pytest

from keras_mapping.tokenizers import BertTokenizer
from tests.conftest import shared_dir

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@pytest.fixture(scope="session")
def reference_rows():
    """`[{"text", "ids"}]` of the Hugging Face reference (ids without [CLS]/[SEP])."""
    path = shared_dir() / "fixtures" / "wordpiece_reference.jsonl"
    if not path.is_file():
        pytest.skip(f"reference fixture {path} is absent on this machine")
    with open(path, encoding="utf-8") as file:
        return [json.loads(line) for line in file]


@pytest.fixture(scope="session")
def minilm_tokenizer():
    return BertTokenizer.from_preset("minilm_l6")


@pytest.fixture
def tiny_vocab():
    return SPECIALS + ["the", "cat", "sat", "on", "mat", "!", ".", "##s", "##at", "c", "m"]


def mismatch_report(got, rows):
    """Assertion message: how many rows differ and the first few texts with both id lists."""
    bad = [(row, ids) for row, ids in zip(rows, got) if list(ids) != row["ids"]]
    lines = [f"{len(bad)} of {len(rows)} texts differ from the reference"]
    lines += [f"  {row['text']!r}: expected {row['ids']}, got {list(ids)}" for row, ids in bad[:5]]
    return len(bad), "\n".join(lines)
