"""BertTokenizer's API: input kinds, special ids, detokenize, config, presets and bad input."""

import json
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_mapping.checkpoints import resolve_preset
from keras_mapping.tokenizers import BertTokenizer
from tests.tokenizers.conftest import SPECIALS


def test_input_kinds_and_output_types(tiny_vocab):
    tokenizer = BertTokenizer(tiny_vocab)
    expected = [[5, 6, 7, 11], [5, 9]]
    for batch in (["The cat sat.", "the mat"], np.array(["The cat sat.", "the mat"]),
                  tf.constant(["The cat sat.", "the mat"])):
        ids = tokenizer.tokenize(batch)
        assert isinstance(ids, tf.RaggedTensor) and ids.dtype == tf.int32
        assert ids.to_list() == expected
    single = tokenizer.tokenize("The cat sat.")
    assert isinstance(single, tf.Tensor) and single.shape.rank == 1
    assert single.numpy().tolist() == expected[0]
    assert tokenizer("cats!").numpy().tolist() == [6, 12, 10]
    assert tokenizer.tokenize([["the cat", "mat"], ["sat"]]).to_list() == [[[5, 6], [9]], [[7]]]
    assert tokenizer.tokenize([["the", "cat"]]).to_list() == [[[5], [6]]]


def test_special_token_ids_and_lookups(tiny_vocab):
    tokenizer = BertTokenizer(tiny_vocab)
    assert (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.cls_token_id,
            tokenizer.sep_token_id, tokenizer.mask_token_id) == (0, 1, 2, 3, 4)
    assert tokenizer.vocabulary_size() == len(tiny_vocab)
    assert tokenizer.token_to_id("##at") == 13 and tokenizer.id_to_token(13) == "##at"
    assert tokenizer.tokenize("dog").numpy().tolist() == [1]
    # Literal special tokens map to their ids unless asked not to.
    assert tokenizer.tokenize("the [MASK]").numpy().tolist() == [5, 4]
    plain = BertTokenizer(tiny_vocab, special_tokens_in_strings=False)
    assert plain.tokenize("the [MASK]").numpy().tolist() == [5, 1, 1, 1]


def test_detokenize_joins_pieces(tiny_vocab):
    tokenizer = BertTokenizer(tiny_vocab)
    batch = tokenizer.detokenize(tokenizer.tokenize(["The CATS sat!", "mat"]))
    assert [text.decode() for text in batch.numpy()] == ["the cats sat !", "mat"]
    assert tokenizer.detokenize([5, 6, 12]).numpy().decode() == "the cats"
    assert [t.decode() for t in tokenizer.detokenize([[5], [6, 12]]).numpy()] == ["the", "cats"]


def test_string_output_dtype(tiny_vocab):
    tokenizer = BertTokenizer(tiny_vocab, dtype="string")
    assert tokenizer.tokenize("cats").numpy().tolist() == [b"cat", b"##s"]


def test_config_round_trip(tiny_vocab):
    tokenizer = BertTokenizer(tiny_vocab, lowercase=False, strip_accents=True,
                              split_on_cjk=False, max_input_chars_per_word=7,
                              special_tokens_in_strings=False, name="wp")
    config = tokenizer.get_config()
    assert config["vocabulary"] == tiny_vocab
    clone = BertTokenizer.from_config(config)
    assert clone.get_config() == config
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(tokenizer))
    assert type(revived) is BertTokenizer and revived.get_config() == config
    texts = ["the Cat [MASK]", "catcatcat mat"]
    assert clone.tokenize(texts).to_list() == tokenizer.tokenize(texts).to_list()


def test_from_preset_reads_tokenizer_config(tmp_path):
    source = resolve_preset("minilm_l6")
    for name in ("config.json", "vocab.txt"):
        shutil.copy(source / name, tmp_path / name)
    tokenizer = BertTokenizer.from_preset(tmp_path)
    assert tokenizer.lowercase and tokenizer.strip_accents is None and tokenizer.split_on_cjk
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"do_lower_case": False, "strip_accents": True, "tokenize_chinese_chars": False}))
    cased = BertTokenizer.from_preset(tmp_path)
    assert (cased.lowercase, cased.strip_accents, cased.split_on_cjk) == (False, True, False)
    assert cased.tokenize("Café").numpy().tolist() == [100]  # "Cafe" is not in an uncased vocab
    assert BertTokenizer.from_preset(tmp_path, lowercase=True).lowercase


def test_missing_vocabulary_file_names_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "vocab.txt"
    with pytest.raises(FileNotFoundError, match=r"Vocabulary file '.*nowhere/vocab\.txt'"):
        BertTokenizer(missing)


def test_vocabulary_without_special_tokens_names_file_and_tokens(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\n[SEP]\nthe\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"'.*vocab\.txt' lacks the special tokens \[CLS\], "
                                         r"\[MASK\]"):
        BertTokenizer(path)
    with pytest.raises(ValueError, match=r"vocabulary list lacks the special tokens \[MASK\]"):
        BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "x"])


def test_duplicate_vocabulary_entry_names_the_line(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(SPECIALS + ["the", "cat", "the"]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"vocab\.txt' repeats the token 'the' on line 8 "
                                         r"\(first on line 6\)"):
        BertTokenizer(path)
    with pytest.raises(ValueError, match=r"repeats the token '\[PAD\]' on entry 6"):
        BertTokenizer(SPECIALS + ["[PAD]"])


def test_non_utf8_vocabulary_names_the_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"[PAD]\ncaf\xe9\n")
    with pytest.raises(ValueError, match=r"'.*vocab\.txt' is not UTF-8"):
        BertTokenizer(path)


def test_vocabulary_file_keeps_inner_whitespace(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(SPECIALS + ["a ", "a"]) + "\n", encoding="utf-8")
    assert BertTokenizer(path).get_vocabulary()[-2:] == ["a ", "a"]
