"""RTE probe: cross-encode the pair, mean-pool each segment's tokens separately, and classify
SBERT features of the two vectors ([u, v, |u-v|, u*v, cos]) instead of one pooled vector.

Usage (from the repository root, after `make setup`; data under /work/shared/data or
$KERAS_MAPPING_DATA_DIR):

    .venv/bin/python bench/rte_segment_pooling_probe.py lr=5e-5 epochs=4 fe=1 [seed=42]

Same pipeline, backbone, optimizer and small-data recipe as the pair defaults (batch 16, 128
tokens, 10% warmup, mixed bf16, embeddings frozen with fe=1); prints validation accuracy as
JSON after each third of an epoch. Not a product feature yet: BENCHMARKS.md ("Sentence
pairs") reports what it reached against the defaults' mean pooling.
"""
import json
import math
import os
import sys
import time

import keras, numpy as np
from keras import ops
from keras_mapping.data import text_dataset
from keras_mapping.models import BertBackbone
from keras_mapping.tasks.datasets import load_task_data
from keras_mapping.tokenizers import BertTokenizer
from keras_mapping.training.optimizers import create_optimizer

args = dict(a.split("=") for a in sys.argv[1:])
lr = float(args.get("lr", 5e-5)); epochs = int(args.get("epochs", 4)); fe = args.get("fe", "1") == "1"
SEED = int(args.get("seed", 42)); keras.utils.set_random_seed(SEED)
keras.config.set_dtype_policy("mixed_bfloat16")
DATA = os.environ.get("KERAS_MAPPING_DATA_DIR", "/work/shared/data")
task, d = load_task_data(f"{DATA}/rte")
train, val = d["train"], d["validation"]
tok = BertTokenizer.from_preset("minilm_l6")
bb = BertBackbone.from_preset("minilm_l6", dropout=0.1)
bb.freeze(embeddings=fe, num_layers=0)
inputs = bb.input
seq = bb(inputs)["sequence_output"]
def pool(seq, seg, mask, which):
    m = ops.cast(ops.logical_and(mask, ops.equal(seg, which)), seq.dtype)[..., None]
    v = ops.sum(seq * m, axis=1) / ops.maximum(ops.sum(m, axis=1), 1.0)
    return v / ops.maximum(ops.norm(v, axis=-1, keepdims=True), 1e-6)
class SegFeatures(keras.layers.Layer):
    def call(self, seq, seg, mask):
        u, v = pool(seq, seg, mask, 0), pool(seq, seg, mask, 1)
        return ops.concatenate([u, v, ops.abs(u - v), u * v, ops.sum(u * v, axis=-1, keepdims=True)], axis=-1)
feats = SegFeatures(dtype="float32")(seq, inputs["segment_ids"], inputs["padding_mask"])
logits = keras.layers.Dense(2, dtype="float32")(keras.layers.Dropout(0.1)(feats))
model = keras.Model(inputs, logits)
bs = 16; spe = math.ceil(len(train) / bs)
model.compile(optimizer=create_optimizer(lr, spe * epochs, warmup_ratio=0.1, model=model, num_layers=6),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
tds = text_dataset(train, tok, max_length=128, batch_size=bs, shuffle=True, seed=SEED, group_by_length=True, repeat=True, buckets=None)
vds = text_dataset(val, tok, max_length=128, batch_size=64, buckets=None)
t0 = time.time()
for e in range(epochs):
    for r in range(3):
        model.fit(tds, steps_per_epoch=spe // 3, epochs=1, verbose=0)
        acc = float((model.predict(vds, verbose=0).argmax(1) == np.array(val.labels)).mean())
        print(json.dumps({"args": args, "epoch": e + 1, "round": r + 1, "acc": round(acc, 4), "sec": round(time.time() - t0)}), flush=True)
