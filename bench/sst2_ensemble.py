"""SST-2: the default recipe from several seeds, and their ensemble, within 30 minutes.

Usage (from the repository root, after `make setup`; nothing else should run meanwhile):

    .venv/bin/python bench/sst2_ensemble.py [--seeds 42,43,44] [--out DIR]

Each seed runs `keras-mapping finetune --preset minilm_l6 --dataset sst2 --seed S` (the
defaults otherwise), one after the other; then `keras-mapping ensemble` combines the first
two and all of them. Rows (table "sst2_ensemble" in BENCHMARKS.md): each member's validation
accuracy at its best round (the recipe's selection on validation) beside its last round, and
each ensemble's accuracy with the wall and CPU time of everything it took (its members'
runs and the ensemble command).
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

from cifar_transfer import timed as run
from results_table import cpu_description, record_result, shown_command

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "keras_mapping.cli.main"]
COLUMNS = ("part", "command", "accuracy", "last_round_accuracy", "best_round",
           "members_last_round_accuracy", "wall_seconds", "cpu_seconds", "cpu", "measured_at")


def member(seed, out):
    shutil.rmtree(out, ignore_errors=True)
    command = CLI + ["finetune", "--preset", "minilm_l6", "--dataset", "sst2", "--seed",
                     str(seed), "--out", str(out), "--verbose", "2"]
    wall, cpu, last = run(command)
    trained = json.loads(last)
    return {"part": f"seed_{seed}", "command": shown_command(command[len(CLI):]),
            "accuracy": trained["accuracy"],
            "last_round_accuracy": trained["last_round_accuracy"],
            "best_round": trained["best_round"], "wall_seconds": round(wall, 1),
            "cpu_seconds": round(cpu, 1), "cpu": cpu_description()}


def ensemble(members, out):
    shutil.rmtree(out, ignore_errors=True)
    command = CLI + ["ensemble", "--models", *[str(m["out"]) for m in members], "--out",
                     str(out)]
    wall, cpu, last = run(command)
    combined = json.loads(last)
    return {"part": f"ensemble_of_{len(members)}", "command": shown_command(command[len(CLI):]),
            "accuracy": combined["accuracy"],
            "members_last_round_accuracy": " / ".join(
                f"{100 * m['last_round_accuracy']:.2f}%" for m in members),
            # everything the ensemble took: its members' runs, then the ensemble command
            "wall_seconds": round(wall + sum(m["wall_seconds"] for m in members), 1),
            "cpu_seconds": round(cpu + sum(m["cpu_seconds"] for m in members), 1),
            "ensemble_command_seconds": round(wall, 1), "cpu": cpu_description()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="42,43,44", help="Comma-separated member seeds.")
    parser.add_argument("--out", default=str(ROOT / "saved_models" / "bench_ensemble"),
                        help="Where the members and ensembles go.")
    arguments = parser.parse_args()
    out = Path(arguments.out)
    members = []
    for seed in [int(seed) for seed in arguments.seeds.split(",")]:
        row = member(seed, out / f"seed_{seed}")
        record_result("sst2_ensemble", row["part"], dict(row),
                      COLUMNS, percent_columns=("accuracy", "last_round_accuracy"))
        members.append({**row, "out": out / f"seed_{seed}"})
    for count in sorted({2, len(members)}):
        row = ensemble(members[:count], out / f"ensemble_of_{count}")
        record_result("sst2_ensemble", row["part"], row, COLUMNS,
                      percent_columns=("accuracy", "last_round_accuracy"))


if __name__ == "__main__":
    main()
