"""Memory of `keras-mapping predict --input` on a 1 GB file: resident memory, sampled while it
streams, stays flat (the file is never read whole).

    .venv/bin/python bench/predict_memory.py --model saved_models/sst2_minilm_l6 [--seconds 240]

The input is SST-2's validation sentences repeated to `--size-mb` megabytes (1,024 by
default) in a temporary file. The command runs for `--seconds`, then is stopped (the whole
file would take hours); its resident set size (RSS) is sampled every two seconds. The result
row holds the RSS after the model has loaded (first output line), every 30 seconds and at
the end, and how many texts had been classified.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from results_table import ROOT, record_result, shown_command

COLUMNS = ("input_mb", "seconds", "texts_classified", "rss_mb_first_output", "rss_mb_end",
           "rss_mb_peak", "rss_mb_every_30s", "command", "measured_at")


def write_input(path, size_mb, data_dir):
    sentences = [line.split("\t")[0] for line in
                 (Path(data_dir) / "sst2" / "validation.tsv").read_text().splitlines()[1:]]
    block = ("\n".join(sentences) + "\n").encode()
    with open(path, "wb") as file:
        for _ in range(size_mb * 2**20 // len(block) + 1):
            file.write(block)
    return path.stat().st_size


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="saved_models/sst2_minilm_l6")
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=240)
    parser.add_argument("--data-dir", default=os.environ.get("KERAS_MAPPING_DATA_DIR",
                                                             str(ROOT.parent / "shared" / "data")))
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        texts = Path(folder) / "texts.txt"
        size = write_input(texts, arguments.size_mb, arguments.data_dir)
        arguments_shown = ["predict", "--model", arguments.model, "--input", "TEXTS_1GB.txt"]
        process = subprocess.Popen(
            [sys.executable, "-m", "keras_mapping.cli.main", "predict", "--model",
             arguments.model, "--input", str(texts)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        lines, first_output = [0], threading.Event()

        def count_lines():
            for _ in process.stdout:
                lines[0] += 1
                first_output.set()

        threading.Thread(target=count_lines, daemon=True).start()
        started, samples, rss_first = time.time(), [], None
        while time.time() - started < arguments.seconds and process.poll() is None:
            samples.append(rss_mb(process.pid))
            if rss_first is None and first_output.is_set():
                rss_first = samples[-1]
            time.sleep(2)
        rss_end = rss_mb(process.pid)
        process.kill()
        process.wait()
    record_result("predict_memory", "1gb", {
        "input_mb": round(size / 2**20), "seconds": round(time.time() - started),
        "texts_classified": lines[0], "rss_mb_first_output": round(rss_first or 0),
        "rss_mb_end": round(rss_end), "rss_mb_peak": round(max(samples)),
        "rss_mb_every_30s": " ".join(str(round(value)) for value in samples[::15]),
        "command": shown_command(arguments_shown)
        + f"  (bench/predict_memory.py --seconds {arguments.seconds:g})",
    }, COLUMNS)


if __name__ == "__main__":
    main()
