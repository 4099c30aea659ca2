"""Where a prediction or training step spends its time, op by op: ours (TensorFlow) and PyTorch.

Usage (from the repository root, after `make setup`):

    KERAS_BACKEND=tensorflow TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python bench/step_profile.py \
        [--mode predict|train] [--precision bf16] [--length 128] [--batch-size 32] \
        [--steps 10] [--torch-python PY]

The model and rules of `bench/throughput.py`'s cells: `minilm_l6` with a 2-class head, one
fixed batch of random token ids without padding. Predict: ours is `BertTextClassifier` called
in inference inside a `tf.function`; PyTorch's (when `--torch-python` names an interpreter with
torch and transformers) Hugging Face's `BertForSequenceClassification` under `inference_mode`
(and bf16 autocast). Train: full fine-tuning with dropout 0.1 and AdamW (lr 5e-5, weight decay
0.01); ours one `train_on_batch` of the compiled model (the function `fit` runs), PyTorch's
forward, backward, `optimizer.step()` and `zero_grad()`. 10 steps are traced after 3 untimed
ones: ours with `tf.profiler`, the trace's op events summed per op type and per part of the
encoder; PyTorch's self CPU time per `aten` op from `torch.profiler`. Times are milliseconds
per step; TensorFlow ops that run side by side on the two cores sum past the wall time.
BENCHMARKS.md ("bf16 prediction against PyTorch, op by op" and the sections after it) quotes
the output.
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_table import cpu_name

PRESET = "minilm_l6"
WARMUP_STEPS = 3
LEARNING_RATE, WEIGHT_DECAY = 5e-5, 0.01
MARKER = "TORCH_PROFILE "


def token_batch(batch_size, length):
    import numpy as np

    return np.random.default_rng(0).integers(0, 30522, (batch_size, length)).astype("int32")


def timed_per_step(step, steps):
    for _ in range(WARMUP_STEPS):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - started) / steps


def part_of(op_type, op_name):
    """The part of an encoder block an op belongs to, from its name scope and type."""
    matmul = op_type in ("_MklMatMul", "_MklNativeFusedMatMul", "_MklFusedMatMul")
    if "layer_norm" in op_name:
        return "LayerNorm"
    if "/attention/" in op_name:
        return "attention projections" if matmul else f"attention core: {op_type}"
    if matmul:
        return "feed-forward matmuls (bias, GELU, residual fused in)"
    return f"other: {op_type}"


def trace_events(log_dir, steps):
    """(op type, op name, ms per step) of every TensorFlow op in a profiler trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    path = next(Path(log_dir).rglob("*.xplane.pb"))
    space = xplane_pb2.XSpace()
    space.ParseFromString(path.read_bytes())
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                op_name, _, op_type = name.rpartition(":")
                if op_name and not op_type.startswith(" ") and op_type not in ("Process", "Run"):
                    yield op_type, re.sub(r"_\d+/", "/", op_name), event.duration_ps / 1e9 / steps


def ours_step(arguments):
    """One prediction or training step of ours on a fixed batch, as a no-argument callable."""
    import keras
    import numpy as np
    import tensorflow as tf

    if arguments.precision == "bf16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    from keras_mapping.models import BertBackbone, BertTextClassifier

    model = BertTextClassifier(BertBackbone.from_preset(PRESET), num_classes=2)
    ids = token_batch(arguments.batch_size, arguments.length)
    features = {"token_ids": ids, "segment_ids": np.zeros_like(ids),
                "padding_mask": np.ones(ids.shape, bool)}
    if arguments.mode == "train":
        model.compile(optimizer=keras.optimizers.AdamW(LEARNING_RATE,
                                                       weight_decay=WEIGHT_DECAY),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        labels = np.random.default_rng(1).integers(0, 2, arguments.batch_size)
        return lambda: model.train_on_batch(features, labels)
    features = {name: tf.constant(value) for name, value in features.items()}
    predict = tf.function(lambda x: model(x, training=False))
    return lambda: predict(features).numpy()


def profile_ours(arguments):
    import tensorflow as tf

    step = ours_step(arguments)
    seconds = timed_per_step(step, arguments.steps)
    with tempfile.TemporaryDirectory() as log_dir:
        tf.profiler.experimental.start(log_dir)
        for _ in range(arguments.steps):
            step()
        tf.profiler.experimental.stop()
        events = list(trace_events(log_dir, arguments.steps))
    by_type, by_part = collections.Counter(), collections.Counter()
    for op_type, op_name, milliseconds in events:
        by_type[op_type] += milliseconds
        by_part[part_of(op_type, op_name)] += milliseconds
    return {"implementation": "ours", "ms_per_batch": seconds * 1e3,
            "by_op": dict(by_type.most_common()), "by_part": dict(by_part.most_common())}


def profile_torch(arguments):
    import numpy as np
    import torch
    import transformers
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(os.cpu_count())
    model = transformers.BertForSequenceClassification.from_pretrained(
        arguments.checkpoint, num_labels=2).eval()
    ids = torch.from_numpy(token_batch(arguments.batch_size, arguments.length)).long()
    features = {"input_ids": ids, "token_type_ids": torch.zeros_like(ids),
                "attention_mask": torch.ones_like(ids)}

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=arguments.precision == "bf16")

    if arguments.mode == "train":
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE,
                                      weight_decay=WEIGHT_DECAY)
        labels = torch.from_numpy(np.random.default_rng(1).integers(0, 2, len(ids)))

        def step():
            with autocast():
                loss = model(**features, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    else:
        def step():
            with torch.inference_mode(), autocast():
                model(**features).logits

    seconds = timed_per_step(step, arguments.steps)
    with profile(activities=[ProfilerActivity.CPU]) as trace:
        for _ in range(arguments.steps):
            step()
    by_op = {event.key: event.self_cpu_time_total / 1e3 / arguments.steps
             for event in trace.key_averages() if event.self_cpu_time_total > 0}
    by_op = dict(sorted(by_op.items(), key=lambda item: -item[1]))
    return {"implementation": "pytorch", "ms_per_batch": seconds * 1e3, "by_op": by_op,
            "versions": f"torch {torch.__version__}, transformers {transformers.__version__}"}


def run_torch(arguments):
    from keras_mapping.checkpoints.presets import resolve_preset

    command = [arguments.torch_python, __file__, "--torch-cell", "--checkpoint",
               str(resolve_preset(PRESET)), "--mode", arguments.mode,
               "--precision", arguments.precision,
               "--length", str(arguments.length), "--batch-size", str(arguments.batch_size),
               "--steps", str(arguments.steps)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(output.split(MARKER, 1)[1])


def print_table(title, times, limit=14):
    print(f"\n{title}")
    for key, milliseconds in list(times.items())[:limit]:
        print(f"  {milliseconds:8.1f} ms  {key}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("predict", "train"), default="predict")
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--torch-python", help="an interpreter with torch and transformers")
    parser.add_argument("--torch-cell", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.torch_cell:
        print(MARKER + json.dumps(profile_torch(arguments)))
        return
    results = [profile_ours(arguments)]
    if arguments.torch_python:
        results.append(run_torch(arguments))
    cpu = cpu_name()
    for result in results:
        result.update(mode=arguments.mode, precision=arguments.precision,
                      length=arguments.length,
                      batch=arguments.batch_size, cpu=cpu)
        print(json.dumps(result))
        print(f"\n{result['implementation']}: {result['ms_per_batch']:.1f} ms per "
              f"{arguments.mode} step of {arguments.batch_size} x {arguments.length}, "
              f"{arguments.precision}, {cpu}")
        if "by_part" in result:
            print_table("by part of the encoder", result["by_part"])
        print_table("by op", result["by_op"])


if __name__ == "__main__":
    sys.exit(main())
