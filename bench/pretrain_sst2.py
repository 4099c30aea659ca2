"""The value of pretraining, measured on SST-2 (issue 5's experiment table).

Usage (from the repository root, after `make setup`):

    .venv/bin/python bench/pretrain_sst2.py [--parts pretrain,scratch,pretrained] [--steps N]

Parts (each appends its row to bench/results/ and the table in BENCHMARKS.md):
- pretrain: `keras-mapping pretrain --objective mlm --preset bert_mini` on the SST-2 training
  sentences with their labels removed (one sentence a document, so a share can be held out),
  BERT's uncased vocabulary; MLM accuracy per round goes to a PNG plot.
- scratch: `keras-mapping finetune` (default recipe) of `bert_mini` with random weights and
  the same vocabulary (`--from-scratch` on the pretrained directory).
- pretrained: the same fine-tuning recipe starting from the pretrained weights.
"""

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "keras_mapping.cli.main"]
RESULTS = ROOT / "bench" / "results"
BENCHMARKS = ROOT / "BENCHMARKS.md"
BEGIN, END = "<!-- pretrain_sst2:begin -->", "<!-- pretrain_sst2:end -->"
COLUMNS = ("row", "command", "sst2_accuracy", "pretraining", "seconds", "measured_at")


def data_dir():
    import os

    return Path(os.environ.get("KERAS_MAPPING_DATA_DIR", ROOT.parent / "shared" / "data"))


def write_corpus(folder):
    """SST-2 training sentences without labels, one sentence a document."""
    source = data_dir() / "sst2" / "train.tsv"
    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "sst2_train_sentences.txt"
    with open(source, encoding="utf-8") as rows, open(corpus, "w", encoding="utf-8") as out:
        next(rows)
        for line in rows:
            out.write(line.rsplit("\t", 1)[0].strip() + "\n\n")
    return corpus


def run(command):
    started = time.time()
    completed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if completed.returncode:
        raise SystemExit(f"{' '.join(map(str, command))} failed:\n{completed.stderr[-3000:]}")
    return time.time() - started, json.loads(completed.stdout.strip().splitlines()[-1])


def plot_mlm_accuracy(log, png):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(log, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rounds = [int(row["epoch"]) + 1 for row in rows]
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot(rounds, [float(row["accuracy"]) for row in rows], label="training (dynamic masks)")
    axis.plot(rounds, [float(row["val_accuracy"]) for row in rows], label="held-out sentences")
    axis.set_xlabel("round")
    axis.set_ylabel("masked-token accuracy")
    axis.set_title("bert_mini MLM on SST-2 training sentences")
    axis.legend()
    figure.tight_layout()
    figure.savefig(png, dpi=100)


def write_table():
    rows = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("pretrain_sst2_*.json"))]
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = []
        for column in COLUMNS:
            value = row.get(column, "")
            if column == "sst2_accuracy" and value != "":
                value = f"{100 * value:.2f}%"
            cells.append(f"`{value}`" if column == "command" else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    text = BENCHMARKS.read_text()
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    BENCHMARKS.write_text(text[:start] + "\n" + "\n".join(lines) + "\n" + text[stop:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="pretrain,scratch,pretrained")
    parser.add_argument("--steps", type=int, default=4000, help="pretraining steps")
    parser.add_argument("--work", default=str(ROOT / "saved_models" / "pretrain_bench"))
    arguments = parser.parse_args()
    work = Path(arguments.work)
    pretrained = work / "bert_mini_mlm"
    RESULTS.mkdir(parents=True, exist_ok=True)
    for part in arguments.parts.split(","):
        if part == "pretrain":
            corpus = write_corpus(work / "corpus")
            command = ["pretrain", "--corpus", str(corpus), "--objective", "mlm", "--preset",
                       "bert_mini", "--steps", str(arguments.steps), "--steps-per-round",
                       str(max(1, arguments.steps // 20)), "--batch-size", "128",
                       "--learning-rate", "5e-4", "--validation-share", "0.02",
                       "--out", str(pretrained), "--verbose", "2"]
            seconds, metrics = run(CLI + command)
            plot_mlm_accuracy(pretrained / "logs" / "training.csv",
                              ROOT / "bench" / "results" / "pretrain_sst2_mlm_accuracy.png")
            result = {"row": "pretraining run", "command": "keras-mapping " + " ".join(command),
                      "pretraining": (f"{arguments.steps} steps x 128, held-out MLM accuracy "
                                      f"{metrics['mlm_accuracy']:.3f}, perplexity "
                                      f"{metrics['perplexity']:.1f}"),
                      "seconds": round(seconds)}
        elif part in ("scratch", "pretrained"):
            out = work / f"finetune_{part}"
            # The default recipe, except that the embeddings train: frozen random
            # embeddings would handicap the from-scratch row.
            command = ["finetune", "--preset", str(pretrained), "--dataset", "sst2", "--out",
                       str(out), "--no-freeze-embeddings", "--verbose", "2"] + (
                           ["--from-scratch"] if part == "scratch" else [])
            seconds, metrics = run(CLI + command)
            result = {"row": f"bert_mini {'from scratch' if part == 'scratch' else 'MLM-pretrained by us'}",
                      "command": "keras-mapping " + " ".join(command),
                      "sst2_accuracy": metrics["accuracy"],
                      "pretraining": "none" if part == "scratch" else "the run above",
                      "seconds": round(seconds)}
        else:
            raise SystemExit(f"unknown part {part!r}")
        result["measured_at"] = time.strftime("%Y-%m-%d %H:%M")
        (RESULTS / f"pretrain_sst2_{part}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result), flush=True)
        write_table()


if __name__ == "__main__":
    main()
