"""Memory of `keras-mapping pretrain` over a ~2 GB corpus: resident memory, sampled every
second while the corpus streams, stays flat (issue 19).

    nice -n 5 .venv/bin/python bench/pretrain_stream.py [--size-mb 2048] [--steps 1000]
        [--compare-mb 20]

The corpus is generated in a temporary folder (deleted at the end unless `--keep`): the
sentences of SST-2, RTE, STS-B and CoNLL-2003 (`$KERAS_MAPPING_DATA_DIR`), repeated and
shuffled by a seeded generator into documents of 2 to 12 sentences, split over 16 files.
`pretrain --objective mlm --preset bert_mini` then runs on it while its resident set size
(RSS) is read from /proc every second. Tokens per second are the real (unpadded) tokens of
the batches it trained on, counted afterwards by rebuilding the same seeded pipeline,
over the training seconds it reports. The same command then runs on a `--compare-mb`
corpus (generated the same way): what memory the run takes whatever the corpus. Writes
bench/results/pretrain_stream.json (and pretrain_stream_small.json) and the table in
BENCHMARKS.md.
"""

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from results_table import RESULTS, ROOT, cpu_description, shown_command, write_table

COLUMNS = ("corpus_mb", "steps", "train_seconds", "wall_seconds", "tokens_per_second",
           "mean_load_average", "rss_mb_peak", "rss_mb_at_25_50_75_100", "flat", "cpu",
           "command", "measured_at")
FILES = 16


def data_dir():
    return Path(os.environ.get("KERAS_MAPPING_DATA_DIR", ROOT.parent / "shared" / "data"))


def sentence_pool(folder):
    """Every sentence of the shared text sets (labels dropped)."""
    sentences = []
    for split in ("train", "validation"):
        rows = (folder / "sst2" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]
        sentences += [row.rsplit("\t", 1)[0] for row in rows]
        for name, columns in (("rte", (1, 2)), ("stsb", (7, 8))):
            for row in (folder / name / f"{split}.tsv").read_text(
                    encoding="utf-8").splitlines()[1:]:
                fields = row.split("\t")
                sentences += [fields[column] for column in columns]
        words = []
        for line in (folder / "conll2003" / f"{split}.txt").read_text(
                encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("-DOCSTART-"):
                words.append(line.split(" ")[0])
            elif words:
                sentences.append(" ".join(words))
                words = []
    return np.array([s.strip() for s in sentences if s.strip()], dtype=object)


def write_corpus(folder, size_mb, seed=0):
    """`FILES` files of documents (2 to 12 random sentences each, a blank line between)."""
    pool = sentence_pool(data_dir())
    blank = len(pool)
    lines = np.append(pool, "")
    rng = np.random.default_rng(seed)
    mean_bytes = np.mean([len(s.encode()) + 1 for s in pool[:10000]])
    per_file = size_mb * 2**20 // FILES
    for index in range(FILES):
        with open(folder / f"part-{index:02d}.txt", "w", encoding="utf-8") as file:
            written = 0
            while written < per_file:
                # About 16 MB of documents (averaging 7 sentences) at a time.
                chunk = min(2**24, per_file)
                lengths = rng.integers(2, 13, size=max(1, int(chunk / mean_bytes / 7)))
                ids = rng.integers(len(pool), size=int(lengths.sum()))
                # A blank line after each document.
                ids = np.insert(ids, np.cumsum(lengths), blank)
                text = "\n".join(lines[ids].tolist()) + "\n"
                file.write(text)
                written += len(text.encode("utf-8"))
    return sum(path.stat().st_size for path in folder.glob("*.txt"))


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return None


def run_sampled(command):
    """Runs `command`, sampling its RSS (and the machine's 1-minute load average) every
    second; returns (samples of (seconds, RSS MB, load), stdout, seconds)."""
    started = time.time()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=ROOT)
    output = {}
    readers = [threading.Thread(target=lambda name=name: output.__setitem__(
        name, getattr(process, name).read()), daemon=True) for name in ("stdout", "stderr")]
    for reader in readers:
        reader.start()
    samples = []
    while process.poll() is None:
        value = rss_mb(process.pid)
        if value is not None:
            samples.append((time.time() - started, value, os.getloadavg()[0]))
        time.sleep(1)
    for reader in readers:
        reader.join()
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{output['stderr'][-3000:]}")
    return samples, output["stdout"], time.time() - started


def trained_tokens(corpus, steps, batch_size, max_length, validation_share, seed=42):
    """Real tokens of the first `steps` training batches: the run's own pipeline, rebuilt
    with its seed, so the same batches."""
    from keras_mapping.data.corpus import open_corpus
    from keras_mapping.data.corpus_stream import training_examples
    from keras_mapping.data.pretraining import masked_lm_dataset
    from keras_mapping.tokenizers import BertTokenizer

    examples = training_examples(open_corpus([corpus]), validation_share=validation_share,
                                 seed=seed)
    batches = masked_lm_dataset(examples, BertTokenizer.from_preset("minilm_l6"),
                                max_length=max_length, batch_size=batch_size, seed=seed,
                                repeat=True)
    return sum(int(inputs["padding_mask"].numpy().sum()) for inputs, *_ in
               batches.take(steps))


def at_fractions(samples, fractions=(0.25, 0.5, 0.75, 1.0)):
    """RSS at fractions of the run's wall time (the sample nearest each)."""
    end = samples[-1][0]
    return [round(min(samples, key=lambda s: abs(s[0] - f * end))[1]) for f in fractions]


def measure(size_mb, arguments):
    """Generates a corpus of `size_mb`, pretrains on it sampling RSS; returns the result."""
    work = Path(tempfile.mkdtemp(prefix="pretrain_stream_", dir="/tmp"))
    try:
        corpus = work / "corpus"
        corpus.mkdir()
        started = time.time()
        size = write_corpus(corpus, size_mb)
        print(f"corpus: {size / 2**20:,.0f} MB in {time.time() - started:.0f} s", flush=True)
        flags = ["pretrain", "--corpus", str(corpus), "--objective", "mlm", "--preset",
                 "bert_mini", "--steps", str(arguments.steps), "--steps-per-round",
                 str(max(1, arguments.steps // 4)), "--batch-size", str(arguments.batch_size),
                 "--max-length", str(arguments.max_length), "--validation-share", "0.01",
                 "--out", str(work / "bert_mini"), "--verbose", "2"]
        samples, stdout, wall = run_sampled(
            [sys.executable, "-m", "keras_mapping.cli.main", *flags])
        metrics = json.loads(stdout.strip().splitlines()[-1])
        tokens = trained_tokens(corpus, arguments.steps, arguments.batch_size,
                                arguments.max_length, 0.01)
        with open(work / "bert_mini" / "logs" / "training.csv") as log:
            rounds = list(csv.DictReader(log))
    finally:
        if not arguments.keep:
            shutil.rmtree(work, ignore_errors=True)
    peak = max(value for _, value, _ in samples)
    quarters = at_fractions(samples)
    shown = [flag.replace(str(work), "/tmp/pretrain_stream_XXXX") for flag in flags]
    return {
        "corpus_mb": round(size / 2**20), "steps": arguments.steps,
        "train_seconds": metrics["train_seconds"], "wall_seconds": round(wall),
        "tokens_per_second": round(tokens / metrics["train_seconds"]),
        "rss_mb_peak": round(peak), "rss_mb_at_25_50_75_100": " ".join(map(str, quarters)),
        "flat": bool(max(quarters) - min(quarters) < 0.1 * peak),
        "cpu": f"{cpu_description()}, {os.cpu_count()} CPUs", "command": shown_command(shown),
        "measured_at": time.strftime("%Y-%m-%d %H:%M"),
        "held_out_mlm_accuracy": metrics.get("mlm_accuracy"),
        "precision": metrics.get("precision"), "trained_tokens": tokens,
        "round_losses": [round(float(row["loss"]), 3) for row in rounds],
        "rss_mb_every_10s": [round(value) for _, value, _ in samples[::10]],
        # Above about 2 the run shared the two cores with other work: tokens/s suffer.
        "mean_load_average": round(float(np.mean([load for *_, load in samples])), 2),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=2048)
    parser.add_argument("--compare-mb", type=int, default=20,
                        help="the same run on a corpus this small (0: none)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--keep", action="store_true", help="keep the generated corpora")
    arguments = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, size_mb in (("pretrain_stream", arguments.size_mb),
                          ("pretrain_stream_small", arguments.compare_mb)):
        if not size_mb:
            continue
        result = measure(size_mb, arguments)
        paths.append(RESULTS / f"{name}.json")
        paths[-1].write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result), flush=True)
    write_table("pretrain_stream", paths, COLUMNS)


if __name__ == "__main__":
    main()
