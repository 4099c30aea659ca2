"""Distribution strategies give the single-device result: MirroredStrategy over two logical
CPU devices trains to the one-device weights (gradients clipped as one device clips them),
evaluates and predicts the same. They share one process of their own (TensorFlow fixes its
devices when it starts; one start-up instead of four), each part printing one JSON line
that its test reads. Several workers: test_multi_worker.py."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import assert_same_weights
from keras_mapping.training.distribute import create_strategy

TWO_LOGICAL_CPUS = """
import json, sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
paths = json.loads(sys.argv[1])


def report(part, value):
    print(part, json.dumps(value), flush=True)
"""

CLIPPING = """
import keras
from keras_mapping.models import BertBackbone, BertTextClassifier
from keras_mapping.training.distribute import (as_distributable, create_strategy,
                                               train_across_replicas)
from keras_mapping.training.optimizers import create_optimizer

rng = np.random.default_rng(0)
tokens = rng.integers(5, 100, size=(48, 8)).astype("int32")
inputs = {"token_ids": tokens, "segment_ids": np.zeros_like(tokens),
          "padding_mask": np.ones_like(tokens, bool)}
labels = (tokens[:, 1] > 50).astype("int32")


def train(strategy, optimizer):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        backbone = BertBackbone(vocabulary_size=100, num_layers=1, num_heads=2, hidden_dim=16,
                                intermediate_dim=32, max_sequence_length=8, dropout=0.0)
        model = BertTextClassifier(backbone, num_classes=2, dropout=0.0)
        model.compile(optimizer=optimizer())
    data = tf.data.Dataset.from_tensor_slices((inputs, labels)).shuffle(48, seed=1).batch(8)
    data = as_distributable(data.repeat(), strategy)
    train_across_replicas(model, data.element_spec)
    model.fit(data, epochs=1, steps_per_epoch=18, verbose=0)
    return model.get_weights()


# A clipping threshold every step's gradient exceeds, on sparse embedding gradients too.
optimizers = {"ours": lambda: create_optimizer(1e-2, 18, global_clipnorm=0.1),
              "keras": lambda: keras.optimizers.AdamW(1e-2, global_clipnorm=0.1)}
differences = {}
for name, optimizer in optimizers.items():
    mirrored = train(create_strategy("mirrored"), optimizer)
    single = train(create_strategy("default"), optimizer)
    differences[name] = max(float(np.abs(a - b).max()) for a, b in zip(mirrored, single))
report("clipping", differences)
"""


def test_mirrored_clips_the_global_batch_gradient_as_one_device(two_replica_runs):
    difference = two_replica_runs["clipping"]
    assert float(difference["ours"]) < 1e-5
    # Keras' own AdamW clips each replica's share: the check can tell the two apart.
    assert float(difference["keras"]) > 1e-3


def test_strategy_errors_and_tpu_configuration(monkeypatch):
    with pytest.raises(ValueError, match="`strategy` must be one of"):
        create_strategy("horovod")
    with pytest.raises(ValueError, match="needs the TPU's address"):
        create_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        create_strategy("multi-worker")
    assert create_strategy("auto").num_replicas_in_sync == 1
    import tensorflow as tf

    calls = []
    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver",
                        lambda tpu: calls.append(("resolver", tpu)) or "resolver")
    monkeypatch.setattr(tf.config, "experimental_connect_to_cluster",
                        lambda resolver: calls.append(("connect", resolver)))
    monkeypatch.setattr(tf.tpu.experimental, "initialize_tpu_system",
                        lambda resolver: calls.append(("initialize", resolver)))
    monkeypatch.setattr(tf.distribute, "TPUStrategy", lambda resolver: ("tpu", resolver))
    assert create_strategy("auto", tpu="grpc://10.0.0.2:8470") == ("tpu", "resolver")
    assert calls == [("resolver", "grpc://10.0.0.2:8470"), ("connect", "resolver"),
                     ("initialize", "resolver")]


FINETUNE = """
from keras_mapping.training import FinetuneConfig, finetune

preset, dataset, out = paths["preset"], paths["dataset"], paths["finetune"]
strategies = {"mirrored": 8, "default": 16}
for strategy, batch_size in strategies.items():
    finetune(FinetuneConfig(
        preset=preset, dataset=dataset, out=f"{out}/{strategy}", strategy=strategy,
        batch_size=batch_size, epochs=2, learning_rate=5e-3, max_length=32, dropout=0.0,
        evaluations_per_epoch=1, warmup_ratio=0.0, precision="fp32"), verbose=0)
losses = {name: [float(line.split(",")[2]) for line in
                 open(f"{out}/{name}/logs/training.csv").read().splitlines()[1:]]
          for name in strategies}
report("finetune", losses)
"""


def test_finetune_on_two_replicas_gives_the_one_device_weights(two_replica_runs):
    assert "global batches of 16 on 2 replica(s)" in two_replica_runs["stdout"]["finetune"]
    out = two_replica_runs["paths"]["finetune"]
    assert_same_weights(out / "mirrored", out / "default", atol=1e-5)
    losses = two_replica_runs["finetune"]
    assert losses["mirrored"][-1] < losses["mirrored"][0]


PRETRAIN = """
from safetensors.numpy import load_file
from keras_mapping.training import PretrainConfig, pretrain

corpus, out = paths["corpus"], paths["pretrain"]
weights = {}
for strategy, batch_size in (("mirrored", 8), ("default", 16)):
    pretrain(PretrainConfig(
        corpus=[corpus], out=f"{out}/{strategy}", preset="bert_tiny", train_vocab=True,
        vocab_size=120, steps=20, steps_per_round=10, batch_size=batch_size,
        learning_rate=2e-3, max_length=16, dropout=0.0, precision="fp32",
        strategy=strategy), verbose=0)
    weights[strategy] = load_file(f"{out}/{strategy}/model.safetensors")
report("pretrain", max(float(np.abs(weights["mirrored"][name] - weights["default"][name]).max())
                      for name in weights["default"]))
"""


def test_pretrain_on_two_replicas_gives_the_one_device_weights(two_replica_runs):
    assert "global batches of 16 on 2 replica(s)" in two_replica_runs["stdout"]["pretrain"]
    assert two_replica_runs["pretrain"] < 1e-5


EVALUATE = """
from keras_mapping.training.inference import evaluate, predict

model, dataset = paths["model"], paths["dataset"]
results = {}
for strategy in ("mirrored", "default"):
    metrics = evaluate(model, dataset, strategy=strategy)
    rows = list(predict(model, ["the film was wonderful .", "the cast was awful ."] * 40,
                        strategy=strategy))
    results[strategy] = {"accuracy": metrics["accuracy"], "loss": metrics["loss"],
                         "probabilities": [row["probabilities"] for row in rows]}
report("evaluate", results)
"""

PARTS = {"clipping": CLIPPING, "finetune": FINETUNE, "pretrain": PRETRAIN,
         "evaluate": EVALUATE}


@pytest.fixture(scope="module")
def two_replica_runs(tiny_preset, tiny_dataset, tiny_model_dir, tmp_path_factory):
    """Every part above in one process with two logical CPUs: `{part: its JSON line}`,
    `"stdout"` (what each part printed, by part) and `"paths"`. One process also checks
    that mirrored runs of different models can follow each other (they shared collective
    keys, and the second stopped with a shape mismatch)."""
    root = tmp_path_factory.mktemp("two_replicas")
    rng = np.random.default_rng(0)
    words = "the a film story cast plot was is good bad long short".split()
    corpus = root / "corpus.txt"
    corpus.write_text("\n\n".join(" ".join(rng.choice(words, 8)) for _ in range(120)))
    paths = {"preset": tiny_preset, "dataset": tiny_dataset, "model": tiny_model_dir,
             "corpus": corpus, "finetune": root / "finetune", "pretrain": root / "pretrain"}
    script = TWO_LOGICAL_CPUS + "".join(PARTS.values())
    completed = subprocess.run(
        [sys.executable, "-c", script, json.dumps({k: str(v) for k, v in paths.items()})],
        capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    runs, stdout, printed = {"paths": paths}, {}, []
    for line in completed.stdout.splitlines():
        part, _, value = line.partition(" ")
        if part in PARTS:
            runs[part], stdout[part], printed = json.loads(value), "\n".join(printed), []
        else:
            printed.append(line)
    runs["stdout"] = stdout
    return runs


def test_evaluate_and_predict_on_two_replicas_give_the_one_device_results(two_replica_runs):
    results = two_replica_runs["evaluate"]
    assert results["mirrored"]["accuracy"] == results["default"]["accuracy"]
    np.testing.assert_allclose(results["mirrored"]["loss"], results["default"]["loss"],
                               rtol=1e-5)
    np.testing.assert_allclose(results["mirrored"]["probabilities"],
                               results["default"]["probabilities"], atol=1e-5)
