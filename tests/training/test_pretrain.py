import csv
import json

import keras
import numpy as np
import pytest

from keras_mapping.cli.main import main
from keras_mapping.data import CorpusError, shard_corpus
from keras_mapping.data.corpus import FIRST_LINES_CHECKED
from keras_mapping.models import BertBackbone
from keras_mapping.tokenizers import BertTokenizer
from keras_mapping.training import PretrainConfig, pretrain
from tests.helpers import QUIET, AtStep, variables_created_in_traces

SUBJECTS = "the cat|a dog|my friend|the teacher|our neighbour|the child".split("|")
VERBS = "reads a book|eats an apple|walks home|sings a song|paints a wall|opens a door".split("|")


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    """Documents of patterned sentences: words that a masked LM can learn to fill in."""
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(40):
        lines += [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} ." for _ in range(5)] + [""]
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(lines))
    return path


def tiny_config(corpus, out, **overrides):
    values = dict(corpus=[str(corpus)], out=str(out), preset="bert_tiny", train_vocab=True,
                  vocab_size=120, steps=60, steps_per_round=20, batch_size=16,
                  learning_rate=2e-3, max_length=16, mask_rate=0.3, dropout=0.0,
                  precision="fp32", validation_share=0.1)
    values.update(overrides)
    return PretrainConfig(**values)


def losses(out, name="loss"):
    with open(out / "logs" / "training.csv") as handle:
        return [float(row[name]) for row in csv.DictReader(handle)]


@pytest.mark.parametrize("objective", ["mlm", "mlm+nsp"])
def test_loss_falls_and_a_preset_is_left(corpus_file, tmp_path, objective):
    out = tmp_path / "pretrained"
    with variables_created_in_traces() as created:
        metrics = pretrain(tiny_config(corpus_file, out, objective=objective), verbose=0)
    assert created == []  # the training step is traced once (two outputs: two loss trackers)
    history = losses(out)
    assert history[-1] < 0.7 * history[0], history
    assert metrics["mlm_accuracy"] > 0.3 and 1 < metrics["perplexity"] < 120
    assert ("nsp_accuracy" in metrics) == (objective == "mlm+nsp")
    for name in ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"):
        assert (out / name).is_file()
    assert not (out / ".run").exists()
    backbone = BertBackbone.from_preset(out)
    assert backbone.vocabulary_size == len((out / "vocab.txt").read_text().splitlines())


def test_xla_pretraining_learns_on_bucketed_shapes(corpus_file, tmp_path):
    out = tmp_path / "xla"
    seen = []

    class Shapes(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(self.model.jit_compile)

    metrics = pretrain(tiny_config(corpus_file, out, jit_compile=True, steps=40,
                                   max_length=24), callbacks=[Shapes()], verbose=0)
    assert seen and all(seen)
    history = losses(out)
    assert history[-1] < 0.7 * history[0], history
    assert metrics["mlm_accuracy"] > 0.2


def test_causal_objective_learns_and_generates(corpus_file, tmp_path):
    out = tmp_path / "gpt"
    metrics = pretrain(tiny_config(corpus_file, out, objective="causal", steps=80),
                       verbose=0)
    history = losses(out)
    assert history[-1] < 0.5 * history[0], history
    # The patterned corpus is nearly predictable: far below a uniform guess over 120 tokens.
    assert metrics["perplexity"] < 20 and metrics["next_token_accuracy"] > 0.4
    lm = keras.saving.load_model(out / "model.keras")
    tokenizer = BertTokenizer.from_preset(out)
    prompt = [tokenizer.cls_token_id] + tokenizer("the cat").numpy().tolist()
    generated = lm.generate(prompt, max_new_tokens=8, end_token_id=tokenizer.sep_token_id)
    assert generated[:len(prompt)] == prompt and len(generated) > len(prompt)


def test_contrastive_objective_learns_and_leaves_a_preset(corpus_file, tmp_path):
    out = tmp_path / "simcse"
    metrics = pretrain(tiny_config(corpus_file, out, objective="contrastive", dropout=0.1,
                                   learning_rate=1e-3), verbose=0)
    history = losses(out)
    assert history[-1] < history[0], history
    assert 0 <= metrics["retrieval_accuracy"] <= 1 and metrics["contrastive_loss"] > 0
    assert BertBackbone.from_preset(out).num_layers == 2


def test_pretrain_then_finetune_through_the_cli(corpus_file, tmp_path, tiny_dataset, capsys):
    out = tmp_path / "pretrained"
    assert main(["pretrain", "--corpus", str(corpus_file), "--out", str(out), "--preset",
                 "bert_tiny", "--train-vocab", "--vocab-size", "120", "--steps", "20",
                 "--steps-per-round", "10", "--batch-size", "16", "--max-length", "16",
                 "--precision", "fp32", "--verbose", "0"]) == 0
    assert "perplexity" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    model = tmp_path / "classifier"
    assert main(["finetune", "--preset", str(out), "--dataset", str(tiny_dataset),
                 "--out", str(model), "--epochs", "1", "--batch-size", "16",
                 "--max-length", "16", "--precision", "fp32", "--verbose", "0"]) == 0
    assert 0 <= json.loads(capsys.readouterr().out.strip().splitlines()[-1])["accuracy"] <= 1


def test_bad_corpora_get_clear_errors(tmp_path, capsys):
    small = tmp_path / "small.txt"
    small.write_text("one sentence .\nanother one .\n")
    with pytest.raises(CorpusError, match="fewer than one batch"):
        pretrain(tiny_config(small, tmp_path / "a", validation_share=0.0), verbose=0)
    with pytest.raises(CorpusError, match="at least 2 documents"):
        pretrain(tiny_config(small, tmp_path / "b", objective="mlm+nsp",
                             validation_share=0.0), verbose=0)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x00\x01binary")
    assert main(["pretrain", "--corpus", str(binary), "--out", str(tmp_path / "c"),
                 "--verbose", "0"]) == 2
    assert "model.bin:1: NUL byte" in capsys.readouterr().err


@pytest.mark.parametrize("field, value", [("objective", "gpt"), ("preset", "bert_huge"),
                                          ("steps", 0), ("mask_rate", 0.0),
                                          ("precision", "fp8")])
def test_invalid_settings_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        PretrainConfig(corpus=["x.txt"], **{field: value})


def test_vocabulary_training_and_causal_need_a_fresh_model():
    with pytest.raises(ValueError, match="train_vocab"):
        PretrainConfig(corpus=["x.txt"], init_from="minilm_l6", train_vocab=True)
    with pytest.raises(ValueError, match="init_from"):
        PretrainConfig(corpus=["x.txt"], init_from="minilm_l6", objective="causal")


def test_a_killed_run_resumes_at_its_last_checkpoint_and_matches(corpus_file, tmp_path):
    class Crash(Exception):
        pass

    class CrashInRound(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 2 and batch == 5:  # step 22
                raise Crash()

    # Dropout on: the masks' random state is restored along with the weights.
    settings = dict(steps=24, steps_per_round=8, checkpoint_every=4, dropout=0.1)
    pretrain(tiny_config(corpus_file, tmp_path / "straight", **settings), verbose=0)
    out = tmp_path / "resumed"
    config = tiny_config(corpus_file, out, **settings)
    with pytest.raises(Crash):
        pretrain(config, callbacks=[CrashInRound()], verbose=0)
    assert not (out / "config.json").exists()  # an unfinished run does not look finished
    started, printed = [], []

    class Rounds(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            started.append(epoch)

    pretrain(config, callbacks=[Rounds()], verbose=0, print_fn=printed.append)
    assert started == [2]
    assert "pretrain: resuming the killed run at step 20 of 24" in printed
    with open(out / "logs" / "training.csv") as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == [0, 1, 2]
    assert (out / "config.json").is_file()
    straight = BertBackbone.from_preset(str(tmp_path / "straight")).get_weights()
    for a, b in zip(straight, BertBackbone.from_preset(str(out)).get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


def interrupt(model):
    raise KeyboardInterrupt("killed")


def test_a_killed_nsp_run_over_shards_resumes_and_matches_one_over_the_text(corpus_file,
                                                                              tmp_path):
    # One shard keeps the order of the text: the streams, and so the weights, are the same.
    shard_corpus([corpus_file], tmp_path / "shards", shards=1)
    # No held-out set (measured by the other tests): three runs cost less.
    settings = dict(objective="mlm+nsp", steps=12, steps_per_round=12, checkpoint_every=4,
                    dropout=0.1, validation_share=0.0)
    pretrain(tiny_config(corpus_file, tmp_path / "straight", **settings), **QUIET)
    config = tiny_config(tmp_path / "shards", tmp_path / "resumed", **settings)
    with pytest.raises(KeyboardInterrupt):
        pretrain(config, callbacks=[AtStep(7, interrupt)], **QUIET)
    printed = []
    pretrain(config, verbose=0, print_fn=printed.append)
    assert "pretrain: resuming the killed run at step 4 of 12" in printed
    for a, b in zip(BertBackbone.from_preset(str(tmp_path / "straight")).get_weights(),
                    BertBackbone.from_preset(str(tmp_path / "resumed")).get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_a_bad_byte_met_mid_run_stops_it_with_file_and_line(corpus_file, tmp_path, capsys):
    late = tmp_path / "late.txt"
    late.write_bytes(corpus_file.read_bytes() * 6 + b"\n\ncaf\xe9 .\n")
    line = late.read_bytes().count(b"\n")
    assert line > FIRST_LINES_CHECKED  # not found up front: the run has started
    assert main(["pretrain", "--corpus", str(late), "--out", str(tmp_path / "run"),
                 "--preset", "bert_tiny", "--steps", "4", "--batch-size", "16",
                 "--max-length", "16", "--precision", "fp32", "--verbose", "0"]) == 2
    assert f"late.txt:{line}: invalid UTF-8" in capsys.readouterr().err
    assert (tmp_path / "run" / "training_config.json").is_file()
