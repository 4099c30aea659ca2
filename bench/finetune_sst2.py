"""SST-2 fine-tuning benchmark: our defaults, from scratch, and KerasHub's training speed.

Usage (from the repository root, after `make setup`):

    .venv/bin/python bench/finetune_sst2.py [--parts defaults,scratch,kerashub] [--out DIR]

Each part writes its row, one per part and CPU class (`results_table.cpu_class`), to the
"SST-2 fine-tuning" table in BENCHMARKS.md:
- defaults: `keras-mapping finetune --preset minilm_l6 --dataset sst2 --out DIR` (no other
  flag), then `keras-mapping evaluate`; wall time includes data loading and evaluation;
  peak resident memory of the run.
- scratch: the same with `--from-scratch`.
- kerashub: KerasHub's `BertTextClassifier` on the same checkpoint with its own preprocessor
  at sequence length 128 and our default batch size: examples/s over 200 training steps and
  the projected SST-2 epoch time, beside ours.

"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from results_table import cpu_class, record_result, shown_command

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "keras_mapping.cli.main"]
RESULTS = ROOT / "bench" / "results"
SST2_TRAIN_EXAMPLES = 67349
COLUMNS = ("part", "cpu_class", "command", "accuracy", "last_round_accuracy", "best_round",
           "finetune_wall_seconds", "train_examples_per_second",
           "projected_epoch_seconds", "peak_memory_mib", "measured_at")


def run(command):
    """Runs a command, returns (seconds, peak RSS in MiB of this child, last output line)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.time()
    completed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.time() - started
    if completed.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024, completed.stdout.strip().splitlines()[-1]


def finetune_part(name, out, extra_flags):
    shutil.rmtree(out, ignore_errors=True)
    command = CLI + ["finetune", "--preset", "minilm_l6", "--dataset", "sst2", "--out",
                     str(out), "--verbose", "2"] + extra_flags
    seconds, peak_mib, last = run(command)
    trained = json.loads(last)
    eval_seconds, _, last = run(CLI + ["evaluate", "--model", str(out), "--dataset", "sst2",
                                       "--split", "validation"])
    evaluated = json.loads(last)
    return {
        "part": name,
        "command": shown_command(command[len(CLI):]),
        "accuracy": evaluated["accuracy"],
        # the kept round is chosen on validation itself: the last round's beside it
        "last_round_accuracy": trained.get("last_round_accuracy"),
        "best_round": trained.get("best_round"),
        "f1": evaluated["f1"],
        "finetune_wall_seconds": round(seconds, 1),
        "train_examples_per_second": trained["train_examples_per_second"],
        # validation rounds included, so this overstates a bare epoch
        "projected_epoch_seconds": round(SST2_TRAIN_EXAMPLES
                                         / trained["train_examples_per_second"]),
        "peak_memory_mib": round(peak_mib),
        "evaluate_examples_per_second": evaluated["examples_per_second"],
    }


def kerashub_part(steps=200, batch_size=None, sequence_length=128):
    """KerasHub's classifier on the same checkpoint, trained on SST-2 sentences at our
    default batch size."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    import keras_hub
    import tensorflow as tf

    from keras_mapping.checkpoints import resolve_preset
    from keras_mapping.data import load_splits
    from keras_mapping.training import FinetuneConfig

    batch_size = batch_size or FinetuneConfig().batch_size
    train = load_splits("sst2", splits=("train",))["train"]
    classifier = keras_hub.models.BertTextClassifier.from_preset(
        str(resolve_preset("minilm_l6")), num_classes=2)
    classifier.preprocessor.sequence_length = sequence_length
    classifier.compile(optimizer=keras.optimizers.AdamW(5e-5))
    data = (tf.data.Dataset.from_tensor_slices((train.texts, train.labels))
            .batch(batch_size).repeat())
    classifier.fit(data, steps_per_epoch=10, epochs=1, verbose=0)  # warm-up and tracing
    started = time.time()
    classifier.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    seconds = time.time() - started
    per_second = steps * batch_size / seconds
    return {
        "part": "kerashub",
        "command": (f"keras_hub BertTextClassifier.from_preset(minilm_l6 dir), sequence_length="
                    f"{sequence_length}, batch {batch_size}, {steps} steps"),
        "train_examples_per_second": round(per_second, 1),
        "projected_epoch_seconds": round(len(train) / per_second),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="defaults,scratch,kerashub",
                        help="Comma-separated parts to run.")
    parser.add_argument("--out", default=str(ROOT / "saved_models" / "bench"),
                        help="Where the fine-tuned models go.")
    arguments = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    for part in arguments.parts.split(","):
        if part == "defaults":
            result = finetune_part(part, Path(arguments.out) / "defaults", [])
        elif part == "scratch":
            result = finetune_part(part, Path(arguments.out) / "scratch", ["--from-scratch"])
        elif part == "kerashub":
            result = kerashub_part()
        else:
            raise SystemExit(f"unknown part {part!r}")
        result["cpu_class"] = cpu_class()
        record_result("finetune_sst2", f"{part}_{result['cpu_class']}", result, COLUMNS,
                      percent_columns=("accuracy", "last_round_accuracy"))


if __name__ == "__main__":
    main()
