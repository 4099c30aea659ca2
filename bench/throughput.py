"""Training and prediction throughput of MiniLM-L6 (2-class head): ours, KerasHub, PyTorch.

Usage (from the repository root, after `make setup`):

    KERAS_BACKEND=tensorflow .venv/bin/python bench/throughput.py \
        [--implementations ours,kerashub,pytorch] [--modes train,predict] \
        [--precisions fp32,bf16] [--lengths 64,128] [--batch-size 32] [--steps 20] \
        [--predict-steps 40] [--rounds 2] [--jit-compile auto] [--torch-python PYTHON] [--no-record]

The same checkpoint (the pip-installed copy of the `minilm_l6` preset, BERT directory layout)
is loaded three ways: `keras_mapping.models.BertTextClassifier` on
`BertBackbone.from_preset("minilm_l6")`, `keras_hub.models.BertTextClassifier.from_preset(dir,
preprocessor=None)`, and Hugging Face `BertForSequenceClassification.from_pretrained(dir)`
(skipped with a note when torch or transformers is not importable by `--torch-python`).

Rules, the same for every implementation:
- Every cell (implementation x mode x precision x length) runs in its own fresh subprocess,
  using all available cores (TensorFlow's default pools; `torch.set_num_threads` to the number
  of cores for PyTorch); the parent only collects one JSON
  line per cell. The implementations of one configuration take turns, `--rounds` times,
  so drifting machine speed hits them alike; each one's fastest run over its rounds counts.
- Input: fixed-shape batches of uniformly random token ids from the vocabulary, no padding
  (padding_mask all ones), segment ids all zero, random labels; 4 distinct batches cycled.
- train: full fine-tuning (every weight trainable), dropout 0.1 as in the checkpoint config,
  AdamW (lr 5e-5, weight decay 0.01), cross-entropy on logits. Keras: `compile` then `fit`
  on a repeated tf.data dataset without autotuning (whose thread held the end of each
  timed `fit` until its next wake-up); PyTorch: a plain loop with `optimizer.step()`.
- predict: Keras `model.predict` on a repeated dataset; PyTorch in eval mode under
  `torch.inference_mode()`.
- bf16: Keras `keras.config.set_dtype_policy("mixed_bfloat16")` before building; PyTorch
  `torch.autocast("cpu", dtype=torch.bfloat16)`.
- Keras `jit_compile` is Keras' default "auto" unless `--jit-compile` says otherwise; the value
  it resolved to is recorded.
- 3 warm-up steps (tracing, compilation, allocation) are run and not timed; then `--repeats`
  runs of `--steps` (train) or `--predict-steps` (predict) steps are timed, and the fastest
  counts (the median is recorded too). tokens/s = batch x length x steps / seconds.
- FLOPs per token: 6 N (train) or 2 N (predict), N = layers x (4 h^2 + 2 h i) matmul weights
  of the encoder blocks + 2 x layers x length x h for attention scores and values (embedding
  lookups and the per-sequence pooler and head are left out). h = hidden width, i = feed-forward
  width. The peak is the best of 10 TensorFlow 2048x2048 matmuls per precision (fp32, bf16),
  measured at the start in its own subprocess; each cell's FLOP/s is given as a percentage of
  the peak of its precision (so a loaded machine can push it past 100%).
- Ratios vs_kerashub and vs_pytorch (ours' tokens/s divided by theirs, same mode, precision
  and length) are written into ours' rows of the table of this machine's CPU class in
  BENCHMARKS.md ("throughput_amx", "throughput_avx512-bf16" or "throughput_avx2": speeds of
  different classes are not comparable).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from results_table import cpu_class, cpu_name, record_result

ROOT = Path(__file__).resolve().parents[1]
PRESET = "minilm_l6"
WARMUP_STEPS = 3
DISTINCT_BATCHES = 4
LEARNING_RATE, WEIGHT_DECAY = 5e-5, 0.01
PEAK_SIZE, PEAK_REPEATS = 2048, 10
MARKER = "CELL_RESULT "
COLUMNS = ("implementation", "mode", "precision", "length", "batch", "tokens_per_second",
           "tokens_per_second_median", "vs_kerashub", "vs_pytorch", "gflops",
           "percent_of_peak", "jit_compile", "seconds", "command", "measured_at")


# ----------------------------------------------------------------------------------------
# Cells: each runs in its own subprocess. Only the standard library is imported at module
# level, so the PyTorch interpreter can run this file without Keras or TensorFlow.


def make_batches(cell):
    import numpy as np

    rng = np.random.default_rng(0)
    shape = (DISTINCT_BATCHES, cell["batch"], cell["length"])
    token_ids = rng.integers(0, cell["vocabulary_size"], shape)
    labels = rng.integers(0, 2, shape[:2])
    return token_ids, labels


def timed(step, steps, repeats):
    """Seconds of each of `repeats` runs of `steps` steps, after an untimed warm-up."""
    step(WARMUP_STEPS)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        step(steps)
        seconds.append(time.perf_counter() - started)
    return seconds


def peak_cell(cell):
    import tensorflow as tf

    peaks = {}
    for precision, dtype in (("fp32", tf.float32), ("bf16", tf.bfloat16)):
        a, b = (tf.cast(tf.random.normal((PEAK_SIZE, PEAK_SIZE)), dtype) for _ in range(2))
        tf.linalg.matmul(a, b).numpy()  # first call builds the oneDNN kernels
        best = float("inf")
        for _ in range(PEAK_REPEATS):
            started = time.perf_counter()
            tf.linalg.matmul(a, b).numpy()
            best = min(best, time.perf_counter() - started)
        peaks[precision] = 2 * PEAK_SIZE**3 / best / 1e9
    return {"peak_gflops": peaks}


def keras_cell(cell):
    # TensorFlow's own pools already use every core. Capping the inter-op pool as well
    # starved tf.data's prefetching behind the model's ops (predict ran 2.3x slower).
    import tensorflow as tf

    import keras
    import numpy as np

    if cell["precision"] == "bf16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    keras.utils.set_random_seed(0)
    if cell["implementation"] == "ours":
        from keras_mapping.models import BertBackbone, BertTextClassifier

        model = BertTextClassifier(BertBackbone.from_preset(PRESET), num_classes=2)
    else:
        import keras_hub

        model = keras_hub.models.BertTextClassifier.from_preset(
            cell["checkpoint"], num_classes=2, preprocessor=None)
    jit_compile = {"auto": "auto", "true": True, "false": False}[cell["jit_compile"]]
    model.compile(optimizer=keras.optimizers.AdamW(LEARNING_RATE, weight_decay=WEIGHT_DECAY),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[], jit_compile=jit_compile)

    token_ids, labels = make_batches(cell)
    features = {"token_ids": token_ids.astype("int32"),
                "segment_ids": np.zeros_like(token_ids, "int32"),
                "padding_mask": np.ones_like(token_ids, bool)}
    # Pre-batched arrays: slicing yields whole batches, so the input pipeline does no work
    # beyond handing over ready tensors. Autotuning is off because there is nothing to tune,
    # and its model thread holds each iterator's teardown until its next wake-up, which
    # falls 5.11 s, 10.23 s, 20.47 s... after the iterator started: a timed `fit` of 3.3 s
    # returned after 5.15 s.
    options = tf.data.Options()
    options.autotune.enabled = False
    if cell["mode"] == "train":
        data = tf.data.Dataset.from_tensor_slices((features, labels.astype("int32")))
        data = data.repeat().with_options(options)
        step = lambda steps: model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    else:
        data = tf.data.Dataset.from_tensor_slices(features).repeat().with_options(options)
        step = lambda steps: model.predict(data, steps=steps, verbose=0)
    # The first fit/predict traces; its function is cached on the model for the timed call.
    seconds = timed(step, cell["steps"], cell["repeats"])
    return {
        "seconds": seconds,
        "jit_compile": f"{cell['jit_compile']} ({model.jit_compile})",
        "dtype_policy": model.backbone.dtype_policy.name,
        "trainable_parameters": sum(int(np.prod(w.shape)) for w in model.trainable_weights),
        "parameters": model.count_params(),
        "versions": f"keras {keras.__version__}, tensorflow {tf.__version__}",
    }


def pytorch_cell(cell):
    import torch
    import transformers

    torch.set_num_threads(cell["threads"])
    torch.set_num_interop_threads(cell["threads"])
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification.from_pretrained(
        cell["checkpoint"], num_labels=2)
    token_ids, labels = (torch.from_numpy(array) for array in make_batches(cell))
    inputs = [{"input_ids": ids, "token_type_ids": torch.zeros_like(ids),
               "attention_mask": torch.ones_like(ids)} for ids in token_ids]
    bf16 = cell["precision"] == "bf16"

    if cell["mode"] == "train":
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE,
                                      weight_decay=WEIGHT_DECAY)

        def step(steps):
            for index in range(steps):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    loss = model(**inputs[index % DISTINCT_BATCHES],
                                 labels=labels[index % DISTINCT_BATCHES]).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
    else:
        model.eval()

        def step(steps):
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                        enabled=bf16):
                for index in range(steps):
                    model(**inputs[index % DISTINCT_BATCHES]).logits

    seconds = timed(step, cell["steps"], cell["repeats"])
    return {
        "seconds": seconds,
        "jit_compile": "n/a (eager)",
        "dtype_policy": "bfloat16 autocast" if bf16 else "float32",
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "parameters": sum(p.numel() for p in model.parameters()),
        "attention": model.config._attn_implementation,
        "versions": f"torch {torch.__version__}, transformers {transformers.__version__}",
    }


def run_cell(cell):
    run = {"peak": peak_cell, "pytorch": pytorch_cell}.get(cell["implementation"], keras_cell)
    print(MARKER + json.dumps(run(cell)), flush=True)


# ----------------------------------------------------------------------------------------
# Parent: plans the cells, starts one subprocess each, computes FLOP/s and ratios, records.


def spawn(python, cell):
    """Runs one cell in a fresh interpreter; its result dict, or None when it failed."""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    completed = subprocess.run([python, __file__, "--cell", json.dumps(cell)], cwd=ROOT,
                               env=env, capture_output=True, text=True)
    lines = [line for line in completed.stdout.splitlines() if line.startswith(MARKER)]
    if completed.returncode or not lines:
        print(f"cell {cell} failed:\n{completed.stderr[-3000:]}", file=sys.stderr, flush=True)
        return None
    return json.loads(lines[-1][len(MARKER):])


def torch_available(python):
    try:
        return subprocess.run([python, "-c", "import torch, transformers"],
                              capture_output=True).returncode == 0
    except OSError:
        return False


def flops_per_token(config, mode, length):
    layers, hidden = config["num_hidden_layers"], config["hidden_size"]
    matmul_weights = layers * (4 * hidden**2 + 2 * hidden * config["intermediate_size"])
    attention = 2 * layers * length * hidden
    return (6 if mode == "train" else 2) * (matmul_weights + attention)


def print_summary(rows):
    header = ("implementation", "mode", "precision", "length", "tokens_per_second",
              "vs_kerashub", "vs_pytorch", "gflops", "percent_of_peak", "jit_compile",
              "seconds")
    widths = [max(len(h), *(len(str(row.get(h, ""))) for row in rows)) for h in header]
    for values in [header] + [[row.get(h, "") for h in header] for row in rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(values, widths)), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--implementations", default="ours,kerashub,pytorch")
    parser.add_argument("--modes", default="train,predict")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--lengths", default="64,128")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20, help="Timed training steps.")
    parser.add_argument("--predict-steps", type=int, default=40, help="Timed predict steps.")
    parser.add_argument("--repeats", type=int, default=3,
                        help="Timed runs per cell and round; the fastest over all rounds is "
                             "reported.")
    parser.add_argument("--rounds", type=int, default=2,
                        help="Turns of each implementation per configuration, each in a fresh "
                             "process (this shared machine's speed varies between minutes).")
    parser.add_argument("--jit-compile", choices=("auto", "true", "false"), default="auto",
                        help="jit_compile for the Keras models' compile().")
    parser.add_argument("--torch-python", default=sys.executable,
                        help="Interpreter with torch and transformers for the PyTorch cells.")
    parser.add_argument("--no-record", action="store_true",
                        help="Print only; write no result files and leave BENCHMARKS.md.")
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.cell:
        return run_cell(json.loads(arguments.cell))

    from keras_mapping.checkpoints import resolve_preset

    checkpoint = resolve_preset(PRESET)
    config = json.loads((checkpoint / "config.json").read_text())
    implementations = arguments.implementations.split(",")
    if "pytorch" in implementations and not torch_available(arguments.torch_python):
        print(f"note: torch and transformers are not importable by {arguments.torch_python}; "
              "skipping the PyTorch cells (pass --torch-python).", flush=True)
        implementations.remove("pytorch")
    threads = len(os.sched_getaffinity(0))
    cpu = cpu_name()
    print(f"CPU: {cpu}, {threads} threads; checkpoint {checkpoint}", flush=True)
    common = {"threads": threads, "checkpoint": str(checkpoint),
              "vocabulary_size": config["vocab_size"], "batch": arguments.batch_size,
              "jit_compile": arguments.jit_compile, "repeats": arguments.repeats}
    peak = spawn(sys.executable, {**common, "implementation": "peak"})
    if peak is None:
        raise SystemExit("the peak matmul measurement failed")
    peak = peak["peak_gflops"]
    print(f"TensorFlow {PEAK_SIZE}x{PEAK_SIZE} matmul peak: "
          + ", ".join(f"{p} {g:.1f} GFLOP/s" for p, g in peak.items()), flush=True)

    command = "python bench/throughput.py " + " ".join(sys.argv[1:])
    rows = {}
    for length in map(int, arguments.lengths.split(",")):
        for precision in arguments.precisions.split(","):
            for mode in arguments.modes.split(","):
                steps = arguments.steps if mode == "train" else arguments.predict_steps
                timings, details = {}, {}
                # The implementations take turns, so a slow minute of the machine falls on
                # one round of each rather than on all runs of one of them.
                for _ in range(arguments.rounds):
                    for implementation in implementations:
                        cell = {**common, "implementation": implementation, "mode": mode,
                                "precision": precision, "length": length, "steps": steps}
                        python = (arguments.torch_python if implementation == "pytorch"
                                  else sys.executable)
                        result = spawn(python, cell)
                        if result is None:
                            continue
                        timings.setdefault(implementation, []).extend(result.pop("seconds"))
                        details[implementation] = result
                for implementation, seconds in timings.items():
                    tokens = arguments.batch_size * length * steps
                    tokens_per_second = tokens / min(seconds)
                    gflops = tokens_per_second * flops_per_token(config, mode, length) / 1e9
                    row = {"implementation": implementation, "mode": mode,
                           "precision": precision, "length": length,
                           "batch": arguments.batch_size,
                           "tokens_per_second": round(tokens_per_second),
                           "gflops": round(gflops, 1),
                           "percent_of_peak": round(100 * gflops / peak[precision], 1),
                           "steps": steps, "seconds": round(min(seconds), 2),
                           "tokens_per_second_median": round(tokens / sorted(seconds)[
                               len(seconds) // 2]),
                           "command": command, "cpu": cpu, "threads": threads,
                           "peak_gflops": round(peak[precision], 1),
                           **details[implementation]}
                    rows[implementation, mode, precision, length] = row
                    print(json.dumps(row), flush=True)

    for (implementation, *configuration), row in rows.items():
        if implementation != "ours":
            continue
        for other in ("kerashub", "pytorch"):
            theirs = rows.get((other, *configuration))
            if theirs:
                row[f"vs_{other}"] = round(row["tokens_per_second"]
                                           / theirs["tokens_per_second"], 2)
    print_summary(list(rows.values()))
    if not arguments.no_record:
        table = f"throughput_{cpu_class()}"
        for (implementation, mode, precision, length), row in rows.items():
            record_result(table, f"{implementation}_{mode}_{precision}_{length}", row, COLUMNS)


if __name__ == "__main__":
    main()
