"""Mixed precision trains: bf16 and fp16 runs lower their loss, and fp16 scales it so that
small gradients do not underflow."""

import csv

import keras
import pytest

from keras_mapping.training import FinetuneConfig, finetune


class OptimizerKind(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.optimizer = self.model.optimizer
        self.compute_dtype = self.model.dtype_policy.compute_dtype


@pytest.mark.parametrize("precision, compute_dtype", [("bf16", "bfloat16"),
                                                      ("fp16", "float16")])
def test_mixed_precision_training_lowers_the_loss(tiny_preset, tiny_dataset, tmp_path,
                                                  precision, compute_dtype):
    seen = OptimizerKind()
    out = tmp_path / precision
    metrics = finetune(FinetuneConfig(preset=str(tiny_preset), dataset=str(tiny_dataset),
                                      out=str(out), epochs=6, batch_size=16,
                                      learning_rate=5e-3, max_length=32, dropout=0.0,
                                      evaluations_per_epoch=1, freeze_embeddings=False,
                                      warmup_ratio=0.0, precision=precision),
                       callbacks=[seen], verbose=0, print_fn=lambda *_: None)
    assert seen.compute_dtype == compute_dtype
    scaled = isinstance(seen.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (precision == "fp16")
    with open(out / "logs" / "training.csv") as handle:
        losses = [float(row["loss"]) for row in csv.DictReader(handle)]
    assert losses[-1] < 0.85 * losses[0]
    assert metrics["accuracy"] > 0.6
    assert keras.config.dtype_policy().name == "float32"  # the caller's policy is restored


@pytest.mark.parametrize("verb, required", [("finetune", []), ("pretrain", ["--corpus", "x"])])
def test_mixed_precision_is_another_spelling_of_precision(verb, required):
    from keras_mapping.cli.main import build_parser

    arguments = build_parser().parse_args([verb, "--mixed-precision", "fp16", *required])
    assert arguments.precision == "fp16"
