"""The value of pretraining, measured on SST-2 (issue 5's experiment table).

Usage (from the repository root, after `make setup`):

    .venv/bin/python bench/pretrain_sst2.py [--parts pretrain,scratch,pretrained,shipped,
        continue,continued] [--steps N] [--continue-steps N]

Parts (each stores its row in bench/results/ and renders the table in BENCHMARKS.md); every
fine-tuning row uses the default recipe (`keras-mapping finetune --preset P --dataset sst2`):
- pretrain: `keras-mapping pretrain --objective mlm --preset bert_mini` on the SST-2 training
  sentences with their labels removed (one sentence a document, so a share can be held out),
  BERT's uncased vocabulary; MLM accuracy per round goes to a PNG plot.
- scratch: `bert_mini` with random weights and the same vocabulary (`--from-scratch` on the
  pretrained directory).
- pretrained: `bert_mini` from the pretrained weights.
- shipped: `minilm_l6` as shipped: the `defaults` row of bench/finetune_sst2.py (same recipe).
- continue: continued MLM pretraining of `minilm_l6` on the same sentences (`--init-from`).
- continued: `minilm_l6` after that continued pretraining.
- causal: `keras-mapping pretrain --objective causal --preset bert_mini` (a GPT-style decoder
  of bert_mini's sizes) on the same sentences: held-out next-token perplexity, and greedy
  continuations of a few prompts.
"""

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

from results_table import record_result, shown_command

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "keras_mapping.cli.main"]
RESULTS = ROOT / "bench" / "results"
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


def pretrain_command(corpus, out, model_flags, steps, rounds, learning_rate, objective="mlm"):
    """`keras-mapping pretrain` arguments shared by the pretraining parts: batches of 128,
    2% of the sentences held out, `rounds` rounds of metrics."""
    return ["pretrain", "--corpus", str(corpus), "--objective", objective, *model_flags,
            "--steps", str(steps), "--steps-per-round", str(max(1, steps // rounds)),
            "--batch-size", "128", "--learning-rate", learning_rate,
            "--validation-share", "0.02", "--out", str(out), "--verbose", "2"]


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


CAUSAL_PROMPTS = ("the movie is", "a film that", "the acting")


def greedy_continuations(directory, prompts, new_tokens=8):
    """Greedy continuations of `prompts` by the causal LM saved in `directory`."""
    import keras

    import keras_mapping  # noqa: F401 (registers the serialized classes)
    from keras_mapping.tokenizers import BertTokenizer

    tokenizer = BertTokenizer.from_preset(str(directory))
    model = keras.saving.load_model(directory / "model.keras", compile=False)
    continuations = []
    for prompt in prompts:
        start = [tokenizer.cls_token_id] + [int(t) for t in tokenizer.tokenize(prompt)]
        tokens = model.generate(start, max_new_tokens=new_tokens,
                                end_token_id=tokenizer.sep_token_id)
        text = tokenizer.detokenize(tokens[1:])
        text = text.numpy().decode() if hasattr(text, "numpy") else str(text)
        continuations.append(f"'{text.replace(' [SEP]', '')}'")
    return continuations


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts",
                        default="pretrain,scratch,pretrained,shipped,continue,continued")
    parser.add_argument("--steps", type=int, default=7000, help="pretraining steps")
    parser.add_argument("--continue-steps", type=int, default=1000,
                        help="continued-pretraining steps for minilm_l6")
    parser.add_argument("--causal-steps", type=int, default=2000,
                        help="causal language model pretraining steps")
    parser.add_argument("--work", default=str(ROOT / "saved_models" / "pretrain_bench"))
    arguments = parser.parse_args()
    work = Path(arguments.work)
    pretrained = work / "bert_mini_mlm"
    continued = work / "minilm_l6_continued"
    RESULTS.mkdir(parents=True, exist_ok=True)
    for part in arguments.parts.split(","):
        if part == "pretrain":
            corpus = write_corpus(work / "corpus")
            command = pretrain_command(corpus, pretrained, ["--preset", "bert_mini"],
                                       arguments.steps, 20, "5e-4")
            seconds, metrics = run(CLI + command)
            plot_mlm_accuracy(pretrained / "logs" / "training.csv",
                              ROOT / "bench" / "results" / "pretrain_sst2_mlm_accuracy.png")
            result = {"row": "pretraining run", "command": shown_command(command),
                      "pretraining": (f"{arguments.steps} steps x 128, held-out MLM accuracy "
                                      f"{metrics['mlm_accuracy']:.3f}, perplexity "
                                      f"{metrics['perplexity']:.1f}"),
                      "seconds": round(seconds)}
        elif part in ("scratch", "pretrained"):
            out = work / f"finetune_{part}"
            command = ["finetune", "--preset", str(pretrained), "--dataset", "sst2", "--out",
                       str(out), "--verbose", "2"] + (
                           ["--from-scratch"] if part == "scratch" else [])
            seconds, metrics = run(CLI + command)
            result = {"row": "bert_mini " + ("from scratch" if part == "scratch"
                                             else "MLM-pretrained by us"),
                      "command": shown_command(command),
                      "sst2_accuracy": metrics["accuracy"],
                      "pretraining": "none" if part == "scratch" else "the run above",
                      "seconds": round(seconds)}
        elif part == "shipped":
            defaults = json.loads((RESULTS / "finetune_sst2_defaults.json").read_text())
            result = {"row": "minilm_l6 as shipped", "command": defaults["command"],
                      "sst2_accuracy": defaults["accuracy"],
                      "pretraining": "as published (not by us)",
                      "seconds": round(defaults["finetune_wall_seconds"]),
                      "measured_at": defaults["measured_at"]}
        elif part == "continue":
            corpus = write_corpus(work / "corpus")
            command = pretrain_command(corpus, continued, ["--init-from", "minilm_l6"],
                                       arguments.continue_steps, 10, "5e-5")
            seconds, metrics = run(CLI + command)
            result = {"row": "continued pretraining run",
                      "command": shown_command(command),
                      "pretraining": (f"{arguments.continue_steps} steps x 128, held-out MLM "
                                      f"accuracy {metrics['mlm_accuracy']:.3f}, perplexity "
                                      f"{metrics['perplexity']:.1f}"),
                      "seconds": round(seconds)}
        elif part == "continued":
            out = work / "finetune_continued"
            command = ["finetune", "--preset", str(continued), "--dataset", "sst2", "--out",
                       str(out), "--verbose", "2"]
            seconds, metrics = run(CLI + command)
            result = {"row": "minilm_l6 after continued MLM", "command": shown_command(command),
                      "sst2_accuracy": metrics["accuracy"],
                      "pretraining": "published, then the continued run above",
                      "seconds": round(seconds)}
        elif part == "causal":
            corpus = write_corpus(work / "corpus")
            causal = work / "bert_mini_causal"
            command = pretrain_command(corpus, causal, ["--preset", "bert_mini"],
                                       arguments.causal_steps, 10, "5e-4", objective="causal")
            seconds, metrics = run(CLI + command)
            samples = greedy_continuations(causal, CAUSAL_PROMPTS)
            result = {"row": "causal LM (GPT decoder, bert_mini sizes)",
                      "command": shown_command(command),
                      "pretraining": (f"{arguments.causal_steps} steps x 128, held-out "
                                      f"next-token accuracy {metrics['next_token_accuracy']:.3f}"
                                      f", perplexity {metrics['perplexity']:.1f} over "
                                      f"{metrics['predicted_tokens']} tokens; greedy: "
                                      + " / ".join(samples)),
                      "seconds": round(seconds)}
        else:
            raise SystemExit(f"unknown part {part!r}")
        record_result("pretrain_sst2", part, result, COLUMNS, percent_columns=("sst2_accuracy",))


if __name__ == "__main__":
    main()
