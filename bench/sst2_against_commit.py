"""SST-2 fine-tuning defaults: this working tree against an earlier commit, side by side.

Usage (from the repository root, after `make setup`):

    .venv/bin/python bench/sst2_against_commit.py --against REV [--rounds 1] [--out DIR]
        [--extra-flags "..."] [--results-dir DIR] [--keep-worktree]

REV is checked out with `git worktree add --detach /tmp/km_against_<short hash>` (reused when
there; removed at the end unless --keep-worktree). Each round runs
`keras-mapping finetune --preset minilm_l6 --dataset sst2 --out DIR --verbose 2` (the defaults;
--extra-flags appends flags) once with REV's code, in the worktree with PYTHONPATH set to it,
and once with this tree's (uncommitted changes included), alternating which goes first (A B,
B A, ...) so that a slow spell of this shared machine does not fall on one side only.

Each run records a row in the "sst2_against_commit" table of BENCHMARKS.md (part
`<short hash>_round<N>` for REV, `tree_<HEAD short hash>[-dirty]_round<N>` for this tree):
validation accuracy of the kept weights, wall seconds of the finetune process, and finetune's
train_seconds and train_examples_per_second. The table's earlier rows are cleared first, so it
shows one comparison. The last line printed compares the means: wall seconds new/old.
"""

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import results_table
from finetune_sst2 import run
from glue_pairs import add_run_flags, redirect_results
from results_table import cpu_description, record_result, shown_command

ROOT = Path(__file__).resolve().parents[1]
TABLE = "sst2_against_commit"
COLUMNS = ("part", "commit", "accuracy", "last_round_accuracy", "best_round",
           "finetune_wall_seconds", "train_seconds",
           "train_examples_per_second", "command", "cpu", "measured_at")


def git(*arguments):
    # --no-optional-locks: `status` would otherwise refresh this tree's index as it reads it
    return subprocess.run(["git", "--no-optional-locks", *arguments], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()


def this_tree_commit():
    dirty = git("status", "--porcelain")
    return git("rev-parse", "--short", "HEAD") + ("-dirty" if dirty else "")


def add_worktree(revision):
    short = git("rev-parse", "--short", f"{revision}^{{commit}}")
    path = Path(f"/tmp/km_against_{short}")
    if not (path / "keras_mapping").is_dir():
        git("worktree", "add", "--detach", str(path), short)
    return short, path


def python_in(tree):
    """This interpreter (the venv's dependencies) importing TREE's `keras_mapping`. For the
    worktree, `env -C` changes directory and PYTHONPATH puts it ahead of the editable install
    of this tree; env execs Python, so run() still measures the Python process."""
    if tree == ROOT:
        return [sys.executable]
    return ["env", "-C", str(tree), f"PYTHONPATH={tree}", sys.executable]


def check_imports_from(tree):
    command = python_in(tree) + ["-c", "import keras_mapping; print(keras_mapping.__file__)"]
    where = Path(subprocess.run(command, check=True, capture_output=True, text=True,
                                cwd=ROOT).stdout.strip())
    if not where.is_relative_to(tree):
        raise SystemExit(f"{tree}: Python imports keras_mapping from {where}, not the tree")
    print(f"{tree} imports {where}", flush=True)


def finetune_sst2(tree, out, extra_flags):
    shutil.rmtree(out, ignore_errors=True)
    arguments = ["finetune", "--preset", "minilm_l6", "--dataset", "sst2", "--out", str(out),
                 "--verbose", "2"] + extra_flags
    seconds, _, last = run(python_in(tree) + ["-m", "keras_mapping.cli.main"] + arguments)
    trained = json.loads(last)
    return {"command": shown_command(arguments), "accuracy": trained["accuracy"],
            # the best round is chosen on validation itself; the last one is reported beside
            # it (commits before 2026-12-02 did not log it)
            "last_round_accuracy": trained.get("last_round_accuracy"),
            "best_round": trained.get("best_round"),
            "finetune_wall_seconds": round(seconds, 1),
            "train_seconds": trained["train_seconds"],
            "train_examples_per_second": trained["train_examples_per_second"]}


def print_comparison(rows, old, new):
    def mean(commit, key):
        values = [row[key] for row in rows if row["commit"] == commit]
        return sum(values) / len(values)

    print(f"{new} vs {old}, mean of {len(rows) // 2} round(s): wall seconds new/old "
          f"{mean(new, 'finetune_wall_seconds') / mean(old, 'finetune_wall_seconds'):.3f} "
          f"({mean(new, 'finetune_wall_seconds'):.1f} / {mean(old, 'finetune_wall_seconds'):.1f}),"
          f" train seconds new/old "
          f"{mean(new, 'train_seconds') / mean(old, 'train_seconds'):.3f}, accuracy new "
          f"{mean(new, 'accuracy'):.4f} old {mean(old, 'accuracy'):.4f}", flush=True)


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="Earlier commit (any git revision).")
    parser.add_argument("--rounds", type=int, default=1,
                        help="Runs of each side, alternating which goes first (default: 1).")
    add_run_flags(parser, "bench_against")
    parser.add_argument("--keep-worktree", action="store_true",
                        help="Leave /tmp/km_against_<hash> for the next comparison.")
    return parser.parse_args()


def main():
    arguments = parse_arguments()
    redirect_results(arguments.results_dir)
    # Both trees read the same SST-2 files, whatever their cwd.
    os.environ.setdefault("KERAS_MAPPING_DATA_DIR", str(ROOT.parent / "shared" / "data"))
    old, worktree = add_worktree(arguments.against)
    try:
        check_imports_from(worktree)
        new = f"tree_{this_tree_commit()}"
        for stale in results_table.RESULTS.glob(f"{TABLE}_*.json"):
            stale.unlink()
        cpu, rows = cpu_description(), []
        sides = [(old, worktree), (new, ROOT)]
        for round_number in range(1, arguments.rounds + 1):
            for commit, tree in sides if round_number % 2 else sides[::-1]:
                part = f"{commit}_round{round_number}"
                result = finetune_sst2(tree, Path(arguments.out) / part,
                                       shlex.split(arguments.extra_flags))
                row = {"part": part, "commit": commit, **result, "cpu": cpu}
                record_result(TABLE, part, row, COLUMNS,
                              percent_columns=("accuracy", "last_round_accuracy"))
                rows.append(row)
        print_comparison(rows, old, new)
    finally:
        if not arguments.keep_worktree:
            git("worktree", "remove", "--force", str(worktree))


if __name__ == "__main__":
    main()
