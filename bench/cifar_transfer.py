"""The CIFAR-10 transfer experiment (issue 18): does pretraining on one set of classes, or on
unlabelled images, help a new task that has 100 labelled images per class?

Usage (from the repository root, after `make setup`):

    .venv/bin/python bench/cifar_transfer.py [--models resnet20,vit_cifar]
        [--rows scratch,supervised_probe,supervised_full,ssl_probe,ssl_full]
        (other rows: ssl_supervised_probe, ssl_supervised_full, all_labels)
        [--work /tmp/cifar_bench] [--extra-flags "..."] [--pretrain-flags "..."]

Splits (bench/cifar_folders.py, seeded): source = airplane, automobile, bird, cat, deer (all
25,000 training images); target = dog, frog, horse, ship, truck, 100 training images per class
(and 50 others per class as the validation split that keeps the best weights), evaluated on
their 5,000 test images. Every step is one `keras-mapping` command with default settings:
- source pretraining: `finetune --preset MODEL --dataset WORK/source` (supervised), or
  `pretrain-images --preset MODEL --images WORK/unlabeled` (contrastive, all 50,000 training
  images, labels unused);
- target rows: `finetune --dataset WORK/target` from the architecture (scratch) or from the
  pretraining's directory (`--preset DIR`), with `--method full` or `--method linear-probe`
  (the backbone frozen), then `evaluate --split test`.
- rows `ssl_supervised_*`: the supervised source step starts from the contrastive one's
  directory (`finetune --preset WORK/runs/MODEL_ssl --dataset WORK/source`);
- row `all_labels`: the target from scratch on all its 24,250 labelled training images, a
  ceiling for what transfer can recover.
A pretraining step runs once and is reused by the rows that start from it (kept in WORK).
`--extra-flags` go to every command, `--pretrain-flags` to the pretraining commands only
(the rows then name them in their `pretraining` cell); `--tag` is appended to the part
names, so rows of another pretraining recipe stand beside the defaults' rows.
CPU seconds are the user + system time of each command's process; each row lists its
target's and, separately, its pretraining's.
"""

import argparse
import json
import resource
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cifar_folders import build, default_tar
from results_table import cpu_description, record_result, shown_command

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "keras_mapping.cli.main"]
# row: (pretraining step or None, target method, the target's training folder)
ROWS = {"scratch": (None, "full", "target"),
        "supervised_probe": ("supervised", "linear-probe", "target"),
        "supervised_full": ("supervised", "full", "target"),
        "ssl_probe": ("ssl", "linear-probe", "target"),
        "ssl_full": ("ssl", "full", "target"),
        # both: the contrastive backbone, then supervised on the source from it
        "ssl_supervised_probe": ("ssl_supervised", "linear-probe", "target"),
        "ssl_supervised_full": ("ssl_supervised", "full", "target"),
        # not a transfer row: the target trained from scratch on all its training images
        # (48 times the labels), a ceiling for what transfer can give the 100 per class
        "all_labels": (None, "full", "target_all_labels")}
TRANSFER_ROWS = ("scratch", "supervised_probe", "supervised_full", "ssl_probe",
                 "ssl_full")  # what runs by default
# The commands and the CPU are in each row's JSON file (bench/results/cifar_transfer_*.json).
COLUMNS = ("part", "pretraining", "target_method", "target_validation_accuracy",
           "target_test_accuracy",
           "target_cpu_seconds", "target_wall_seconds", "pretraining_cpu_seconds",
           "pretraining_wall_seconds", "pretraining_metric", "measured_at")


def timed(command):
    """Runs a command; returns (wall seconds, CPU seconds of the child, last output line)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    completed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    wall = time.time() - started
    if completed.returncode:
        raise SystemExit(f"{shlex.join(command)} failed:\n{completed.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, completed.stdout.strip().splitlines()[-1]


def pretraining(model, kind, work, extra_flags, pretrain_flags=()):
    """Runs (once) and describes the `kind` pretraining of `model`: its directory, times
    and headline metric, cached in DIR/bench_step.json. "ssl_supervised" starts the
    supervised step from the "ssl" step's directory; its times include that step's."""
    out = work / "runs" / f"{model}_{kind}"
    record = out / "bench_step.json"
    if record.exists():
        return json.loads(record.read_text())
    before = (pretraining(model, "ssl", work, extra_flags, pretrain_flags)
              if kind == "ssl_supervised" else {"wall": 0, "cpu": 0, "directory": model})
    if kind in ("supervised", "ssl_supervised"):
        command = ["finetune", "--preset", before["directory"], "--dataset",
                   str(work / "source")]
        metric = "accuracy"
    else:
        command = ["pretrain-images", "--preset", model, "--images", str(work / "unlabeled")]
        metric = "retrieval_accuracy"
    command += ["--out", str(out), "--verbose", "2"] + extra_flags + list(pretrain_flags)
    wall, cpu, last = timed(CLI + command)
    step = {"directory": str(out), "wall": round(wall + before["wall"], 1),
            "cpu": round(cpu + before["cpu"], 1),
            "metric": f"{metric} {json.loads(last).get(metric, float('nan')):.4f}",
            # a chained step's command line starts with the step it continues
            "command": " && ".join(filter(None, (before.get("command"),
                                                 shown_command(command))))}
    record.write_text(json.dumps(step, indent=2) + "\n")
    return step


def pretraining_label(kind, pretrain_flags):
    """The `pretraining` cell: the kind of pretraining and any flags it was given."""
    label = {None: "none", "supervised": "supervised on source",
             "ssl": "contrastive on 50k unlabelled",
             "ssl_supervised": "contrastive on 50k unlabelled, then supervised on source"}[kind]
    return f"{label} ({shlex.join(pretrain_flags)})" if kind and pretrain_flags else label


def finetune_and_test(preset, method, out, work, extra_flags=(), folder="target"):
    """Trains the target task (`WORK/folder`) from `preset` into `out` and evaluates it on
    the target's test images: the row's target cells."""
    command = ["finetune", "--preset", str(preset), "--dataset", str(work / folder),
               "--method", method, "--out", str(out), "--verbose", "2"] + list(extra_flags)
    shutil.rmtree(out, ignore_errors=True)
    wall, cpu, trained = timed(CLI + command)
    _, _, last = timed(CLI + ["evaluate", "--model", str(out), "--dataset",
                              str(work / "target"), "--split", "test"])
    # the best validation round's, which kept the weights: what recipes are chosen by
    return {"target_validation_accuracy": round(json.loads(trained)["accuracy"], 4),
            "target_test_accuracy": round(json.loads(last)["accuracy"], 4),
            "target_cpu_seconds": round(cpu, 1), "target_wall_seconds": round(wall, 1),
            "target_command": shown_command(command)}


def target_row(model, row, work, extra_flags, pretrain_flags=(), tag=""):
    kind, method, folder = ROWS[row]
    start = pretraining(model, kind, work, extra_flags, pretrain_flags) if kind else None
    target = finetune_and_test(start["directory"] if start else model, method,
                               work / "runs" / f"{model}_{row}{tag}_target", work,
                               extra_flags, folder)
    return {"part": f"{model}_{row}{tag}", "model": model,
            "pretraining": pretraining_label(kind, pretrain_flags),
            "target_method": method, **target,
            "pretraining_cpu_seconds": start["cpu"] if start else 0,
            "pretraining_wall_seconds": start["wall"] if start else 0,
            "pretraining_metric": start["metric"] if start else "",
            "pretraining_command": start["command"] if start else "", "cpu": cpu_description()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet20,vit_cifar")
    parser.add_argument("--rows", default=",".join(TRANSFER_ROWS))
    parser.add_argument("--work", default="/tmp/cifar_bench")
    parser.add_argument("--tar", default=None)
    parser.add_argument("--extra-flags", default="")
    parser.add_argument("--pretrain-flags", default="")
    parser.add_argument("--tag", default="", help="suffix of the part names, e.g. _src30")
    args = parser.parse_args()
    work = build(args.work, args.tar or default_tar())
    extra_flags = shlex.split(args.extra_flags)
    for model in args.models.split(","):
        for row in args.rows.split(","):
            result = target_row(model, row, Path(work), extra_flags,
                                shlex.split(args.pretrain_flags), args.tag)
            record_result("cifar_transfer", result["part"], result, COLUMNS,
                          percent_columns=("target_validation_accuracy",
                                           "target_test_accuracy"))


if __name__ == "__main__":
    main()
