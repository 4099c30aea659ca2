"""Exported artifacts against `keras-mapping predict` on every SST-2 validation sentence.

Usage (from the repository root, after `make setup`):

    .venv/bin/python bench/export_sst2.py --model saved_models/sst2_minilm_l6

Exports the model directory as a SavedModel and as TFLite (`keras-mapping export`), runs the
872 validation sentences through `predict`, the SavedModel's `serving_default` and the
TFLite interpreter, and records label agreement, the largest probability difference, the
sentences whose token ids differ between our tokenizer and the TFLite tokenizer, and
throughput. The row goes to BENCHMARKS.md.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from results_table import write_table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
COLUMNS = ("model", "sentences", "savedmodel_vs_predict_max_diff", "tflite_vs_savedmodel_max_diff",
           "tflite_label_agreement", "tokenization_differences", "savedmodel_examples_per_second",
           "tflite_examples_per_second", "tflite_mib", "measured_at")


def sst2_validation():
    data = Path(os.environ.get("KERAS_MAPPING_DATA_DIR", ROOT.parent / "shared" / "data"))
    with open(data / "sst2" / "validation.tsv", encoding="utf-8") as rows:
        next(rows)
        return [line.rstrip("\n").rsplit("\t", 1)[0] for line in rows]


def export(model, out, format):
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "keras_mapping.cli.main", "export", "--model",
                    str(model), "--out", str(out), "--format", format], check=True, cwd=ROOT)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a finetune model directory")
    parser.add_argument("--work", default=str(ROOT / "saved_models" / "export_bench"))
    arguments = parser.parse_args()
    import tensorflow as tf

    from keras_mapping.tasks.model_directory import load_model_directory
    from keras_mapping.export.tflite import TFLiteWordPieces, run_tflite, tflite_interpreter
    from keras_mapping.training.inference import predict

    texts = sst2_validation()
    work = Path(arguments.work)
    export(arguments.model, work / "savedmodel", "savedmodel")
    export(arguments.model, work / "tflite", "tflite")

    predicted = np.array([row["probabilities"] for row in predict(arguments.model, texts)])
    serving = tf.saved_model.load(str(work / "savedmodel" / "1")).signatures["serving_default"]
    serving(text=tf.constant(texts[:64]))  # warm-up
    started = time.time()
    served = np.concatenate([serving(text=tf.constant(texts[i:i + 64]))["probabilities"].numpy()
                             for i in range(0, len(texts), 64)])
    served_seconds = time.time() - started
    interpreter = tflite_interpreter(work / "tflite" / "model.tflite")
    started = time.time()
    lite = np.concatenate([run_tflite(interpreter, texts[i:i + 64])["probabilities"]
                           for i in range(0, len(texts), 64)])
    lite_seconds = time.time() - started

    bundle = load_model_directory(arguments.model)
    tflite_tokenizer = TFLiteWordPieces(bundle.tokenizer)
    ours = bundle.tokenizer.tokenize(tf.constant(texts)).to_list()
    theirs = tflite_tokenizer.pieces(tf.constant(texts)).to_list()
    differing = [text for text, a, b in zip(texts, ours, theirs) if a != b]

    result = {
        "model": str(arguments.model),
        "sentences": len(texts),
        "savedmodel_vs_predict_max_diff": f"{np.abs(served - predicted).max():.1e}",
        "tflite_vs_savedmodel_max_diff": f"{np.abs(lite - served).max():.1e}",
        "tflite_label_agreement": f"{int((lite.argmax(1) == served.argmax(1)).sum())}"
                                  f"/{len(texts)}",
        "tokenization_differences": len(differing),
        "differing_sentences": differing[:5],
        "savedmodel_examples_per_second": round(len(texts) / served_seconds, 1),
        "tflite_examples_per_second": round(len(texts) / lite_seconds, 1),
        "tflite_mib": round((work / "tflite" / "model.tflite").stat().st_size / 2**20, 1),
        "measured_at": time.strftime("%Y-%m-%d %H:%M"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "export_sst2.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    write_table("export_sst2", [RESULTS / "export_sst2.json"], COLUMNS)


if __name__ == "__main__":
    main()
