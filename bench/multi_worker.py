"""Training past one process: two workers on 127.0.0.1 against one worker, and `mirrored`
over two logical CPUs, on the same global batch and data.

Usage (from the repository root, after `make setup`; SST-2 found as `--dataset sst2` finds it):

    .venv/bin/python bench/multi_worker.py [--parts one_worker,one_thread,two_workers,mirrored]
        [--train-examples 2048] [--out DIR]

Every part fine-tunes `minilm_l6` on the first `--train-examples` SST-2 training sentences for
one epoch with a global batch of 32 (64 steps for 2,048 sentences), max_length 64, fp32 and
no dropout (so that the weights can be compared to rounding: with dropout each replica draws
its own masks), one validation round on 64 sentences:
- one_worker: `--strategy default --batch-size 32`, one process with both cores;
- one_thread: the same computing on one thread (`TF_NUM_INTRAOP_THREADS=1
  TF_NUM_INTEROP_THREADS=1`): one core's worth, the base of the scaling efficiency;
- two_workers: `--strategy multi-worker --batch-size 16`, two processes on 127.0.0.1 with
  `TF_CONFIG`, each computing on one thread. (Not pinned with `taskset`: TensorFlow's
  collective and gRPC threads then wait for the compute thread's core, which measured 2 to 4
  times slower per step, 35.7 against 153 examples/s for a linear probe.)
- mirrored: `--strategy mirrored --batch-size 16` in one process whose CPU is split into two
  logical devices.
Each row gives training examples/s (finetune's own figure: from the first step to the last,
tracing and the validation round included), the wall time of the command (start-up included),
the scaling efficiency (examples/s over twice one_thread's), and the largest weight difference
from one_worker's model. Rows go to the "multi_worker" table of BENCHMARKS.md.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from keras_mapping.training.distribute import loopback_cluster
from results_table import cpu_description, record_result, shown_command

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "keras_mapping.cli.main"]
COLUMNS = ("part", "command", "processes", "cores_each", "global_batch", "steps",
           "train_examples_per_second", "scaling_efficiency", "wall_seconds",
           "max_weight_difference", "cpu", "measured_at")
GLOBAL_BATCH = 32
TWO_LOGICAL_CPUS = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from keras_mapping.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def finetune_arguments(out, train_examples, batch_size, strategy):
    return ["finetune", "--preset", "minilm_l6", "--dataset", "sst2", "--out", str(out),
            "--max-train-examples", str(train_examples), "--max-eval-examples", "64",
            "--epochs", "1", "--evaluations-per-epoch", "1", "--max-length", "64",
            "--precision", "fp32", "--dropout", "0", "--batch-size", str(batch_size),
            "--strategy", strategy,
            "--verbose", "0"]


ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}


def launch(command, env=None):
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(processes):
    """Waits for every process; returns the chief's (the first's) JSON metrics."""
    outputs = [process.communicate() for process in processes]
    for process, (_, stderr) in zip(processes, outputs):
        if process.returncode:
            raise SystemExit(f"{process.args} failed:\n{stderr[-3000:]}")
    return json.loads(outputs[0][0].strip().splitlines()[-1])


def run_part(part, out, train_examples):
    """Runs one part; returns (its row without the comparisons, the shown command)."""
    shutil.rmtree(out, ignore_errors=True)
    started = time.time()
    if part in ("one_worker", "one_thread"):
        arguments = finetune_arguments(out, train_examples, GLOBAL_BATCH, "default")
        metrics = finish([launch(CLI + arguments, ONE_THREAD if part == "one_thread" else None)])
        processes, cores = 1, 1 if part == "one_thread" else 2
        shown = ("TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 " if cores == 1 else ""
                 ) + shown_command(arguments)
    elif part == "two_workers":
        arguments = finetune_arguments(out, train_examples, GLOBAL_BATCH // 2, "multi-worker")
        metrics = finish([launch(CLI + arguments, {"TF_CONFIG": config, **ONE_THREAD})
                          for config in loopback_cluster(2)])
        processes, cores = 2, 1
        shown = f"TF_CONFIG=... TF_NUM_*_THREADS=1 {shown_command(arguments)} (2 workers)"
    else:
        arguments = finetune_arguments(out, train_examples, GLOBAL_BATCH // 2, "mirrored")
        metrics = finish([launch([sys.executable, "-c", TWO_LOGICAL_CPUS, *arguments])])
        processes, cores = 1, 2
        shown = shown_command(arguments) + " (CPU split into two logical devices)"
    return {"part": part, "command": shown, "processes": processes, "cores_each": cores,
            "global_batch": GLOBAL_BATCH, "steps": -(-train_examples // GLOBAL_BATCH),
            "train_examples_per_second": metrics["train_examples_per_second"],
            "wall_seconds": round(time.time() - started, 1), "cpu": cpu_description()}


def max_weight_difference(directory, reference):
    from keras_mapping.tasks.model_directory import load_model_directory

    pairs = zip(load_model_directory(directory).model.get_weights(),
                load_model_directory(reference).model.get_weights())
    return float(max(abs(a - b).max() for a, b in pairs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="one_worker,one_thread,two_workers,mirrored")
    parser.add_argument("--train-examples", type=int, default=2048)
    parser.add_argument("--out", default="/tmp/bench_multi_worker")
    arguments = parser.parse_args()
    parts = arguments.parts.split(",")
    rows = {part: run_part(part, Path(arguments.out) / part, arguments.train_examples)
            for part in parts}
    base = rows.get("one_thread", {}).get("train_examples_per_second")
    for part, row in rows.items():
        if base and row["processes"] * row["cores_each"] == 2:
            row["scaling_efficiency"] = round(row["train_examples_per_second"] / (2 * base), 3)
        if "one_worker" in rows and part != "one_worker":
            difference = max_weight_difference(Path(arguments.out) / part,
                                               Path(arguments.out) / "one_worker")
            row["max_weight_difference"] = f"{difference:.2e}"
        record_result("multi_worker", part, row, COLUMNS)


if __name__ == "__main__":
    main()
