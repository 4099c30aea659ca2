import numpy as np
import pytest

from keras_mapping.models import BertBackbone
from keras_mapping.tokenizers import BertTokenizer


@pytest.fixture(scope="session")
def tiny_preset(tmp_path_factory):
    """A 2-layer, 16-wide BERT in the BERT layout, with the real uncased vocabulary."""
    directory = tmp_path_factory.mktemp("presets") / "tiny_bert"
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
def tiny_dataset(tmp_path_factory):
    """A folder dataset (train.tsv, validation.tsv) whose label is one word of the text."""
    folder = tmp_path_factory.mktemp("data") / "toy_sentiment"
    folder.mkdir()
    for split, count, seed in (("train", 96, 0), ("validation", 32, 1)):
        lines = ["sentence\tlabel"] + [f"{text}\t{label}"
                                       for text, label in sentiment_rows(count, seed)]
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder
