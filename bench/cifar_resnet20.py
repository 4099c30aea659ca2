"""ResNet-20 on all of CIFAR-10 (50,000 training images, evaluated on the 10,000 test images),
from random weights, on this machine's CPU.

Usage (from the repository root, after `make setup`):

    .venv/bin/python bench/cifar_resnet20.py [--parts defaults,30min] [--work /tmp/cifar_bench]

Parts (rows of the "cifar_resnet20" table in BENCHMARKS.md):
- defaults: `keras-mapping finetune --preset resnet20 --dataset WORK/full` with no other flag
  (the image recipe: 10 epochs of batches of 128 at 1e-3, crop and flip augmentation);
- 30min: the same with `--epochs 22`, which fits in about 30 minutes on a 2-core EPYC;
- 30min_amx: `--epochs 28`, about 30 minutes on the 2-core AMX Xeon class with ResNet's
  BatchNorm fused (not a default part: pass `--parts 30min_amx`).
The test images are the run's validation split, so the reported accuracy is that of the best
validation round (as the paper's 91.25% is a test figure too, after 64,000 steps of 128 on a
GPU: 164 epochs). CPU seconds are the user + system time of the finetune process.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

from cifar_folders import build, default_tar
from cifar_transfer import timed
from results_table import cpu_description, record_result, shown_command

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "keras_mapping.cli.main"]
PARTS = {"defaults": [], "30min": ["--epochs", "22"], "30min_amx": ["--epochs", "28"]}
DEFAULT_PARTS = ("defaults", "30min")  # one class's 30-minute part; the other's on request
COLUMNS = ("part", "command", "test_accuracy", "epochs", "batch_size", "learning_rate",
           "train_seconds", "wall_seconds", "cpu_seconds", "train_images_per_second",
           "cpu", "measured_at")


def run_part(part, work):
    out = Path(work) / "runs" / f"resnet20_full_{part}"
    shutil.rmtree(out, ignore_errors=True)
    command = ["finetune", "--preset", "resnet20", "--dataset", str(Path(work) / "full"),
               "--out", str(out), "--verbose", "2"] + PARTS[part]
    wall, cpu, last = timed(CLI + command)
    metrics = json.loads(last)
    recipe = json.loads((out / "training_config.json").read_text())
    return {"part": part, "command": shown_command(command),
            "test_accuracy": round(metrics["accuracy"], 4),
            **{key: recipe[key] for key in ("epochs", "batch_size", "learning_rate")},
            "train_seconds": metrics["train_seconds"], "wall_seconds": round(wall, 1),
            "cpu_seconds": round(cpu, 1),
            "train_images_per_second": metrics["train_examples_per_second"],
            "cpu": cpu_description()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(DEFAULT_PARTS))
    parser.add_argument("--work", default="/tmp/cifar_bench")
    parser.add_argument("--tar", default=None)
    args = parser.parse_args()
    build(args.work, args.tar or default_tar())
    for part in args.parts.split(","):
        record_result("cifar_resnet20", part, run_part(part, args.work), COLUMNS,
                      percent_columns=("test_accuracy",))


if __name__ == "__main__":
    main()
