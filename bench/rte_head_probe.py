"""RTE probe of pair heads for `minilm_l6` (a sentence-embedding checkpoint): where should
the pair's two sentences meet?

    .venv/bin/python bench/rte_head_probe.py mode=siamese head=features lr=2e-5 epochs=4

mode=cross: the pair packed as `[CLS] A [SEP] B [SEP]`, each segment mean-pooled separately.
mode=siamese: A and B encoded apart by the same backbone (as the checkpoint was trained),
each mean-pooled. head=features classifies `[u, v, |u-v|, u*v, cos]`; head=cosine classifies
from the cosine alone (a learned scale and bias per class). freeze=N freezes the lowest N
blocks (the embeddings always). Prints validation accuracy as JSON after each third of an
epoch. Results: BENCHMARKS.md, "Sentence pairs".
"""
import json
import math
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_mapping.models import BertBackbone
from keras_mapping.tasks.datasets import load_task_data
from keras_mapping.tokenizers import BertTokenizer
from keras_mapping.training.optimizers import LayerwiseAdamW
from keras_mapping.training.schedules import WarmupDecay

ARGS = dict(a.split("=") for a in sys.argv[1:])
MODE, HEAD = ARGS.get("mode", "siamese"), ARGS.get("head", "features")
LR, EPOCHS = float(ARGS.get("lr", 2e-5)), int(ARGS.get("epochs", 4))
FREEZE, SEED, BATCH = int(ARGS.get("freeze", 0)), int(ARGS.get("seed", 42)), 16
HEAD_LR = float(ARGS.get("headlr", 1))  # the head's learning rate, times the backbone's
DATA = os.environ.get("KERAS_MAPPING_DATA_DIR", "/work/shared/data")


def masked_mean(sequence, mask):
    weights = ops.cast(mask, sequence.dtype)[..., None]
    mean = ops.sum(sequence * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)
    return mean / ops.maximum(ops.norm(mean, axis=-1, keepdims=True), 1e-6)


class PairFeatures(keras.layers.Layer):
    def call(self, u, v):
        cosine = ops.sum(u * v, axis=-1, keepdims=True)
        if HEAD == "cosine":
            return cosine
        return ops.concatenate([u, v, ops.abs(u - v), u * v, cosine], axis=-1)


class SegmentMeans(keras.layers.Layer):
    def call(self, sequence, segments, mask):
        first = ops.logical_and(mask, ops.equal(segments, 0))
        second = ops.logical_and(mask, ops.equal(segments, 1))
        return masked_mean(sequence, first), masked_mean(sequence, second)


class Means(keras.layers.Layer):
    def call(self, sequence, mask):
        return masked_mean(sequence, mask)


def inputs(name):
    return {key: keras.Input((None,), dtype=dtype, name=f"{name}_{key}")
            for key, dtype in (("token_ids", "int32"), ("segment_ids", "int32"),
                               ("padding_mask", "bool"))}


def build(backbone):
    if MODE == "cross":
        x = inputs("pair")
        sequence = backbone(x)["sequence_output"]
        u, v = SegmentMeans(dtype="float32")(sequence, x["segment_ids"], x["padding_mask"])
        model_inputs = {f"pair_{key}": t for key, t in x.items()}
    else:
        a, b = inputs("a"), inputs("b")
        u = Means(dtype="float32")(backbone(a)["sequence_output"], a["padding_mask"])
        v = Means(dtype="float32")(backbone(b)["sequence_output"], b["padding_mask"])
        model_inputs = {f"{name}_{key}": t for name, x in (("a", a), ("b", b))
                        for key, t in x.items()}
    features = PairFeatures(dtype="float32")(u, v)
    logits = keras.layers.Dense(2, dtype="float32")(keras.layers.Dropout(0.1)(features))
    return keras.Model(model_inputs, logits)


def encoded(tokenizer, texts, prefix, max_length):
    ids = tokenizer.tokenize(texts)[:, : max_length - 2]
    cls = tf.fill([ids.nrows(), 1], tokenizer.cls_token_id)
    sep = tf.fill([ids.nrows(), 1], tokenizer.sep_token_id)
    ids = tf.concat([cls, ids, sep], axis=1)
    return {f"{prefix}_token_ids": ids}


def dataset(tokenizer, examples, shuffle):
    if MODE == "cross":
        from keras_mapping.data import text_dataset
        ds = text_dataset(examples, tokenizer, max_length=128, batch_size=BATCH if shuffle else 64,
                          shuffle=shuffle, seed=SEED, group_by_length=shuffle, repeat=shuffle,
                          buckets=None)
        return ds.map(lambda x, y: ({f"pair_{k}": t for k, t in x.items()}, y))
    features = {**encoded(tokenizer, examples.texts, "a", 128),
                **encoded(tokenizer, examples.text_pairs, "b", 128)}
    ds = tf.data.Dataset.from_tensor_slices((features, examples.targets))
    if shuffle:
        ds = ds.shuffle(len(examples), seed=SEED).repeat()

    def padded(x, y):
        out = {}
        for prefix in ("a", "b"):
            ids = x[f"{prefix}_token_ids"]
            out[f"{prefix}_token_ids"] = ids.to_tensor()
            out[f"{prefix}_padding_mask"] = tf.sequence_mask(ids.row_lengths())
            out[f"{prefix}_segment_ids"] = tf.zeros_like(out[f"{prefix}_token_ids"])
        return out, y

    return ds.batch(BATCH if shuffle else 64).map(padded)


def main():
    keras.utils.set_random_seed(SEED)
    keras.config.set_dtype_policy("mixed_bfloat16")
    _, data = load_task_data(f"{DATA}/rte")
    train, val = data["train"], data["validation"]
    tokenizer = BertTokenizer.from_preset("minilm_l6")
    backbone = BertBackbone.from_preset("minilm_l6", dropout=0.1)
    backbone.freeze(embeddings=True, num_layers=FREEZE)
    backbone.pooler_dense.trainable = False
    model = build(backbone)
    steps = math.ceil(len(train) / BATCH)
    schedule = WarmupDecay(LR, steps * EPOCHS, warmup_steps=int(0.1 * steps * EPOCHS))
    factors = {v.path: HEAD_LR for v in model.trainable_variables
               if not v.path.startswith(("embeddings/", "encoder_layer_"))}
    optimizer = LayerwiseAdamW(factors=factors, learning_rate=schedule, weight_decay=0.01,
                               global_clipnorm=1.0)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    train_ds, val_ds = dataset(tokenizer, train, True), dataset(tokenizer, val, False)
    start, best = time.time(), 0.0
    for epoch in range(EPOCHS):
        for third in range(3):
            model.fit(train_ds, steps_per_epoch=steps // 3, epochs=1, verbose=0)
            accuracy = float((model.predict(val_ds, verbose=0).argmax(1) == val.targets).mean())
            best = max(best, accuracy)
            print(json.dumps({"args": ARGS, "epoch": epoch + 1, "round": third + 1,
                              "accuracy": round(accuracy, 4), "best": round(best, 4),
                              "seconds": round(time.time() - start)}), flush=True)


if __name__ == "__main__":
    main()
