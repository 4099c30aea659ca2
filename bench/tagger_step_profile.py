"""Where a token-classification training step spends its time: one `train_on_batch` of
`BertTokenClassifier` on `minilm_l6` (embeddings frozen, AdamW with global-norm clipping, as
`finetune` builds it) at batch 16 and 32 of 28 pieces, and the forward pass alone, each
after warm-up. The step's fixed part is what does not grow with the batch.

    KERAS_BACKEND=tensorflow .venv/bin/python bench/tagger_step_profile.py bf16   # or fp32

Prints milliseconds per step; BENCHMARKS.md ("Named entities") reads them.
"""
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from keras_mapping.models import BertBackbone, BertTokenClassifier
from keras_mapping.training.optimizers import create_optimizer

PIECES, TAGS = 28, 9


def tagger(precision):
    keras.config.set_dtype_policy("mixed_bfloat16" if precision == "bf16" else "float32")
    backbone = BertBackbone.from_preset("minilm_l6", dropout=0.1)
    backbone.freeze(embeddings=True)
    model = BertTokenClassifier(backbone, num_tags=TAGS)
    model.compile(optimizer=create_optimizer(5e-5, 1000, model=model, num_layers=6))
    return model


def batch(size, rng):
    features = {"token_ids": rng.integers(1000, 2000, (size, PIECES)).astype("int32"),
                "segment_ids": np.zeros((size, PIECES), "int32"),
                "padding_mask": np.ones((size, PIECES), bool)}
    return features, rng.integers(0, TAGS, (size, PIECES)).astype("int32"), np.ones(
        (size, PIECES), "float32")


def milliseconds(step, repeats, warmup=5):
    for _ in range(warmup):
        step()
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    return round((time.perf_counter() - started) / repeats * 1000, 1)


def main():
    precision = sys.argv[1] if len(sys.argv) > 1 else "bf16"
    model, rng = tagger(precision), np.random.default_rng(0)
    small, large = batch(16, rng), batch(32, rng)
    forward = tf.function(lambda features: model(features, training=False))
    print({"precision": precision,
           "train_step_16": milliseconds(lambda: model.train_on_batch(
               small[0], small[1], sample_weight=small[2]), 50),
           "forward_16": milliseconds(lambda: forward(small[0]), 50),
           "train_step_32": milliseconds(lambda: model.train_on_batch(
               large[0], large[1], sample_weight=large[2]), 30)})


if __name__ == "__main__":
    main()
