"""Serving a fine-tuned SST-2 model: latency, throughput, size and accuracy of every artifact.

Usage (from the repository root, after `make setup`; the PyTorch row needs `torch` and
`transformers` importable by the same interpreter, otherwise it is skipped with a note):

    KERAS_MAPPING_DATA_DIR=/work/shared/data .venv/bin/python bench/serving.py \
        --model saved_models/serving_sst2 [--variants savedmodel,tflite,...] \
        [--requests 872] [--warmup 20] [--batch-size 32] [--passes 2] \
        [--max-load 0.6] [--max-wait-minutes 15] [--reuse-exports] [--no-record]

One model directory (`keras-mapping finetune --out DIR`) served six ways, side by side:

- `savedmodel`: `keras-mapping export --format savedmodel`, loaded with
  `tf.saved_model.load`, called through `serving_default` with a `tf.string` batch;
- `savedmodel_int8`: the same after `--quantize int8` (Keras' `model.quantize("int8")`);
- `tflite`, `tflite_int8`, `tflite_float16`: `--format tflite` with `--quantize none`,
  `int8` (dynamic range) and `float16`, run by the TFLite interpreter with tensorflow-text's
  ops and `num_threads` = the core count;
- `pytorch`: the same weights in PyTorch eager mode (`transformers.BertModel` as written
  by our `BertBackbone.save_to_preset`, plus the classifier head), tokenized by
  transformers' `BertTokenizerFast` on the model's `vocab.txt`. Its probabilities must
  match `predict`'s within 1e-4 on the first 64 sentences before anything is timed.

Every request is raw text in, probabilities out, tokenization included. For each variant:
batch-1 latency (p50 and p99 over `--requests` sentences, one per request, after
`--warmup` untimed ones), batch-32 throughput over all 872 validation sentences (the faster
of `--passes` passes), the artifact's size on disk, and SST-2 validation accuracy (from
the batch-32 pass), with the accuracy change and the largest probability difference
against the float32 SavedModel.

Each variant runs in its own fresh process: a runtime loaded before (TensorFlow's pools,
PyTorch's OpenMP threads) could otherwise still hold the cores. Before timing, the worker
waits for the 1-minute load average (`uptime`'s) to fall to `--max-load`, polling every
30 s for up to `--max-wait-minutes`; the row says how long it waited, whether it ran
under load anyway, and how many cores other processes used while it was being timed.
Rows go to `bench/results/serving_{class}_{variant}.json` and the table of this machine's CPU
class in BENCHMARKS.md ("serving_amx", "serving_avx512-bf16" or "serving_avx2").
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from results_table import cpu_class, cpu_description, record_result

ROOT = Path(__file__).resolve().parents[1]
# variant -> (export format, --quantize); "pytorch" comes from the `pytorch_checkpoint` job.
VARIANTS = {
    "savedmodel": ("savedmodel", "none"),
    "savedmodel_int8": ("savedmodel", "int8"),
    "tflite": ("tflite", "none"),
    "tflite_int8": ("tflite", "int8"),
    "tflite_float16": ("tflite", "float16"),
    "pytorch": ("pytorch", "none"),
}
# The CPU flags that decide bf16 and int8 speed, stated with every row.
SPEED_FLAGS = ("avx512_bf16", "avx512_vnni", "amx_tile")
REFERENCE_VARIANT = "savedmodel"  # the float32 artifact every row is compared with
PARITY_SENTENCES, PARITY_TOLERANCE = 64, 1e-4
POLL_SECONDS = 30
# Cores other processes may use while a variant is timed before its row is marked disturbed
# (kernel threads alone take a few hundredths).
BUSY_OTHERS_CORES = 0.2
MARKER = "SERVING_RESULT "
COLUMNS = ("variant", "runtime", "p50_ms", "p99_ms", "batch32_texts_per_second", "size_mib",
           "accuracy", "accuracy_change_points", "max_diff_vs_float32", "label_agreement",
           "threads", "cpu", "load", "measured_at")


# ----------------------------------------------------------------------------------------
# Shared by the parent and the workers. Only the standard library and NumPy are imported at
# module level, so that each worker loads one runtime: TensorFlow or PyTorch, never both.


def data_dir():
    return Path(os.environ.get("KERAS_MAPPING_DATA_DIR", ROOT.parent / "shared" / "data"))


def sst2_validation():
    """The 872 validation sentences and their gold labels as written ("0", "1")."""
    with open(data_dir() / "sst2" / "validation.tsv", encoding="utf-8") as rows:
        next(rows)  # header
        pairs = [line.rstrip("\n").rsplit("\t", 1) for line in rows]
    return [text for text, _ in pairs], [label for _, label in pairs]


def core_count():
    return len(os.sched_getaffinity(0))


def artifact_paths(work, variant):
    """The files whose size is the variant's size on disk."""
    folder = work / variant
    if variant == "pytorch":
        return [folder / "model.safetensors", folder / "head.safetensors"]
    if VARIANTS[variant][0] == "tflite":
        return [folder / "model.tflite"]
    return [path for path in (folder / "1").rglob("*") if path.is_file()]


# ----------------------------------------------------------------------------------------
# Predictors: each loads one artifact and returns `predict_texts(list of str) -> [n, classes]`
# probabilities, a description of the runtime and of its thread settings.


def savedmodel_predictor(folder):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the in-graph tokenizer's ops)

    loaded = tf.saved_model.load(str(folder / "1"))
    serving = loaded.signatures["serving_default"]

    def predict_texts(texts, loaded=loaded):  # `loaded` owns the signature's variables
        return serving(text=tf.constant(texts))["probabilities"].numpy()

    return predict_texts, f"TensorFlow {tf.__version__}", "TensorFlow defaults"


def tflite_predictor(folder):
    import tensorflow as tf
    import tensorflow_text as tf_text
    from tensorflow.lite.python.interpreter import InterpreterWithCustomOps

    # As keras_mapping.export.tflite.tflite_interpreter, plus an explicit thread count.
    interpreter = InterpreterWithCustomOps(
        custom_op_registerers=tf_text.tflite_registrar.SELECT_TFTEXT_OPS,
        model_path=str(folder / "model.tflite"), num_threads=core_count())
    runner = interpreter.get_signature_runner()

    def predict_texts(texts):
        encoded = np.array([text.encode("utf-8") for text in texts], dtype=object)
        return runner(text=encoded)["probabilities"]

    return (predict_texts, f"TFLite interpreter (TensorFlow {tf.__version__})",
            f"num_threads={core_count()}")


class MeanPooledBert:
    """Our `BertTextClassifier(pooling="mean")` in PyTorch: the mean of `BertModel`'s
    outputs over real tokens, then the linear head. (`BertForSequenceClassification` is
    the `pooling="cls"` case: its head reads the tanh pooler of `[CLS]`.)"""

    def __init__(self, encoder, head):
        self.encoder, self.head = encoder, head

    def __call__(self, input_ids, token_type_ids, attention_mask):
        hidden = self.encoder(input_ids=input_ids, token_type_ids=token_type_ids,
                              attention_mask=attention_mask).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return self.head(pooled)


def pytorch_model(folder, settings):
    """`logits_of(**tokenized)` for the classifier in `folder` (BERT layout plus
    `head.safetensors`), in eval mode."""
    import torch
    import transformers
    from safetensors.torch import load_file

    head = load_file(str(folder / "head.safetensors"))
    if settings["pooling"] == "cls":
        model = transformers.BertForSequenceClassification.from_pretrained(
            folder, num_labels=settings["num_classes"])
        model.classifier.load_state_dict(head)
        model.eval()
        return lambda **inputs: model(**inputs).logits
    encoder = transformers.BertModel.from_pretrained(folder, add_pooling_layer=False).eval()
    linear = torch.nn.Linear(head["weight"].shape[1], head["weight"].shape[0])
    linear.load_state_dict(head)
    return MeanPooledBert(encoder, linear.eval())


def pytorch_predictor(folder):
    import torch
    import transformers

    transformers.logging.set_verbosity_error()  # the unused pooler weights are expected
    torch.set_num_threads(core_count())
    torch.set_num_interop_threads(core_count())
    settings = json.loads((folder / "serving.json").read_text())
    tokenizer = transformers.BertTokenizerFast.from_pretrained(folder)
    logits_of = pytorch_model(folder, settings)

    def predict_texts(texts):
        with torch.inference_mode():
            inputs = tokenizer(texts, padding="longest", truncation=True,
                               max_length=settings["max_length"], return_tensors="pt")
            return torch.softmax(logits_of(**inputs), dim=-1).numpy()

    return (predict_texts,
            f"PyTorch {torch.__version__} eager, transformers {transformers.__version__}",
            f"torch.set_num_threads({core_count()})")


PREDICTORS = {"savedmodel": savedmodel_predictor, "tflite": tflite_predictor,
              "pytorch": pytorch_predictor}


def check_pytorch_parity(predict_texts, folder, texts):
    """Stops the worker unless PyTorch's probabilities equal `predict`'s on the first
    sentences; returns the largest difference."""
    reference = np.load(folder / "reference_probabilities.npy")
    difference = float(np.abs(predict_texts(texts[:len(reference)]) - reference).max())
    if difference > PARITY_TOLERANCE:
        raise SystemExit(f"PyTorch differs from predict by {difference:.2e} on the first "
                         f"{len(reference)} sentences (bound {PARITY_TOLERANCE}); not timed.")
    return difference


# ----------------------------------------------------------------------------------------
# Timing.


def cpu_seconds():
    """(busy CPU seconds of the whole machine, CPU seconds of this process) so far."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq = map(int, stat.readline().split()[1:8])
    busy = (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")
    own = os.times()
    return busy, own.user + own.system


def wait_for_quiet(max_load, max_wait_seconds):
    """Waits while the 1-minute load average (what `uptime` shows) is above `max_load`;
    returns a note on what happened, for the row."""
    waited = 0
    while os.getloadavg()[0] > max_load and waited < max_wait_seconds:
        time.sleep(POLL_SECONDS)
        waited += POLL_SECONDS
    load = os.getloadavg()[0]
    return {"load_before": round(load, 2), "waited_seconds": waited,
            "under_load": load > max_load}


def latencies_ms(predict_texts, texts, requests, warmup):
    """Milliseconds per one-sentence request, sentences taken in order (wrapping around)."""
    for text in texts[:warmup]:
        predict_texts([text])
    milliseconds = []
    for index in range(requests):
        started = time.perf_counter()
        predict_texts([texts[index % len(texts)]])
        milliseconds.append(1000 * (time.perf_counter() - started))
    return np.array(milliseconds)


def batched_pass(predict_texts, texts, batch_size):
    """(seconds, probabilities) of one pass over `texts` in batches of `batch_size`."""
    started = time.perf_counter()
    probabilities = np.concatenate([predict_texts(texts[start:start + batch_size])
                                    for start in range(0, len(texts), batch_size)])
    return time.perf_counter() - started, probabilities


def measure(job):
    """Loads the variant, checks it (PyTorch), waits for a quiet machine, then times it."""
    folder = Path(job["work"]) / job["variant"]
    texts, _ = sst2_validation()
    predict_texts, runtime, threads = PREDICTORS[VARIANTS[job["variant"]][0]](folder)
    parity = (check_pytorch_parity(predict_texts, folder, texts)
              if job["variant"] == "pytorch" else None)
    predict_texts(texts[:job["batch_size"]])  # first call: graph set-up, allocation
    quiet = wait_for_quiet(job["max_load"], job["max_wait_seconds"])

    busy_before, own_before = cpu_seconds()
    started = time.perf_counter()
    latencies = latencies_ms(predict_texts, texts, job["requests"], job["warmup"])
    passes = [batched_pass(predict_texts, texts, job["batch_size"])
              for _ in range(job["passes"])]
    elapsed = time.perf_counter() - started
    busy_after, own_after = cpu_seconds()

    seconds, probabilities = min(passes, key=lambda timed_pass: timed_pass[0])
    np.save(folder / "probabilities.npy", probabilities)
    # Clock-tick rounding can make an idle machine's share slightly negative.
    others = max(0.0, ((busy_after - busy_before) - (own_after - own_before)) / elapsed)
    return {
        "runtime": runtime,
        "threads": threads,
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "requests": job["requests"],
        "batch_size": job["batch_size"],
        "batch32_texts_per_second": round(len(texts) / seconds, 1),
        "batch_pass_seconds": [round(timed_pass[0], 3) for timed_pass in passes],
        "pytorch_vs_predict_max_diff": None if parity is None else f"{parity:.1e}",
        "other_processes_cores": round(others, 2),
        **quiet,
    }


def pytorch_checkpoint(job):
    """Writes the model directory's weights for PyTorch: the backbone in the BERT layout
    (`save_to_preset`: config.json, model.safetensors, vocab.txt, tokenizer_config.json),
    the head as `head.safetensors` in PyTorch's (out, in) orientation, the settings the
    predictor needs, and `predict`'s probabilities on the first sentences for the parity
    check."""
    from safetensors.numpy import save_file

    from keras_mapping.tasks.model_directory import load_model_directory
    from keras_mapping.training.inference import predict

    folder = Path(job["work"]) / "pytorch"
    bundle = load_model_directory(job["model"])
    if bundle.training_config.get("method", "full") not in ("full", "lora"):
        raise SystemExit(f"{job['model']}: method {bundle.training_config['method']!r} has "
                         "weights the BERT layout cannot hold; no PyTorch row.")
    bundle.model.backbone.save_to_preset(folder, tokenizer=bundle.tokenizer, overwrite=True)
    dense = bundle.model.output_dense
    save_file({"weight": np.ascontiguousarray(np.asarray(dense.kernel).T),
               "bias": np.asarray(dense.bias)}, str(folder / "head.safetensors"))
    settings = {"pooling": bundle.model.pooling, "max_length": bundle.max_length,
                "num_classes": int(dense.bias.shape[0])}
    (folder / "serving.json").write_text(json.dumps(settings, indent=2) + "\n")
    texts, _ = sst2_validation()
    rows = predict(job["model"], texts[:PARITY_SENTENCES])
    np.save(folder / "reference_probabilities.npy",
            np.array([row["probabilities"] for row in rows], dtype="float32"))
    return settings


JOBS = {"measure": measure, "pytorch_checkpoint": pytorch_checkpoint}


# ----------------------------------------------------------------------------------------
# Parent: exports, starts one worker per variant, compares the rows, records them.


def run_worker(job):
    """Runs one job in a fresh interpreter; its result dict, or None when it failed."""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    completed = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)],
                               cwd=ROOT, env=env, capture_output=True, text=True)
    lines = [line for line in completed.stdout.splitlines() if line.startswith(MARKER)]
    if completed.returncode or not lines:
        print(f"{job['job']} {job.get('variant', '')} failed:\n{completed.stderr[-3000:]}",
              file=sys.stderr, flush=True)
        return None
    return json.loads(lines[-1][len(MARKER):])


def export(model, work, variant, reuse):
    """Writes the variant's artifact with `keras-mapping export` (or, for PyTorch, the
    `pytorch_checkpoint` job); False when that failed."""
    existing = artifact_paths(work, variant) if (work / variant).is_dir() else []
    if reuse and existing and all(path.is_file() for path in existing):
        return True
    if variant == "pytorch":
        return run_worker({"job": "pytorch_checkpoint", "model": str(model),
                           "work": str(work)}) is not None
    format, quantize = VARIANTS[variant]
    command = [sys.executable, "-m", "keras_mapping.cli.main", "export", "--model",
               str(model), "--out", str(work / variant), "--format", format,
               "--quantize", quantize, "--overwrite"]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if completed.returncode:
        print(f"export {variant} failed:\n{completed.stderr[-3000:]}", file=sys.stderr)
    return completed.returncode == 0


def torch_available():
    return subprocess.run([sys.executable, "-c", "import torch, transformers"],
                          capture_output=True).returncode == 0


def load_note(result):
    note = f"1-min load {result['load_before']}"
    if result["waited_seconds"]:
        note += f" after waiting {result['waited_seconds']} s"
    if result["under_load"]:
        note += " (UNDER LOAD: timed anyway)"
    note += f"; others used {result['other_processes_cores']} cores while timed"
    if result["other_processes_cores"] > BUSY_OTHERS_CORES:
        note += " (DISTURBED)"
    return note


def compared_row(variant, result, gold, labels, reference, work):
    """The table row: the worker's timings plus size, accuracy and the comparison with the
    float32 SavedModel (`reference`: its probabilities, or None)."""
    probabilities = np.load(work / variant / "probabilities.npy")
    predicted = np.array(labels)[probabilities.argmax(1)]
    accuracy = float((predicted == np.array(gold)).mean())
    row = {"variant": variant, **result,
           "size_mib": round(sum(path.stat().st_size
                                 for path in artifact_paths(work, variant)) / 2**20, 1),
           "accuracy": round(100 * accuracy, 2)}
    if reference is not None:
        reference_accuracy = float((np.array(labels)[reference.argmax(1)]
                                    == np.array(gold)).mean())
        row["accuracy_change_points"] = round(100 * (accuracy - reference_accuracy), 2)
        row["max_diff_vs_float32"] = f"{np.abs(probabilities - reference).max():.1e}"
        row["label_agreement"] = (f"{int((probabilities.argmax(1) == reference.argmax(1)).sum())}"
                                  f"/{len(gold)}")
    return row


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a finetune model directory (SST-2)")
    parser.add_argument("--work", default=str(ROOT / "saved_models" / "serving_bench"),
                        help="where the exported artifacts are written")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--requests", type=int, default=872,
                        help="timed one-sentence requests (at least 200)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--passes", type=int, default=2,
                        help="timed batched passes over the validation set; the fastest counts")
    parser.add_argument("--max-load", type=float, default=0.6)
    parser.add_argument("--max-wait-minutes", type=float, default=15)
    parser.add_argument("--reuse-exports", action="store_true",
                        help="keep artifacts already in --work instead of exporting again")
    parser.add_argument("--no-record", action="store_true",
                        help="print the rows without writing results or BENCHMARKS.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if not arguments.worker and not arguments.model:
        parser.error("--model is required")
    return arguments


def main():
    arguments = parse_arguments()
    if arguments.worker:
        job = json.loads(arguments.worker)
        print(MARKER + json.dumps(JOBS[job["job"]](job)), flush=True)
        return
    variants = [name for name in arguments.variants.split(",") if name]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    if "pytorch" in variants and not torch_available():
        print("note: torch and transformers are not importable; skipping pytorch.", flush=True)
        variants.remove("pytorch")
    # The float32 SavedModel is timed first: every other row is compared with it.
    variants.sort(key=lambda name: list(VARIANTS).index(name))
    work, model = Path(arguments.work), Path(arguments.model)
    labels = json.loads((model / "labels.json").read_text())["labels"]
    _, gold = sst2_validation()
    cpu = f"{cpu_description(SPEED_FLAGS)}, {core_count()} cores"
    command = "python bench/serving.py " + " ".join(
        part.replace(f"{ROOT}/", "") for part in sys.argv[1:])
    # When the float32 SavedModel is not re-timed in this run, its stored pass stands in.
    stored = work / REFERENCE_VARIANT / "probabilities.npy"
    reference = np.load(stored) if REFERENCE_VARIANT not in variants and stored.is_file() \
        else None
    for variant in variants:
        if not export(model, work, variant, arguments.reuse_exports):
            continue
        result = run_worker({
            "job": "measure", "variant": variant, "work": str(work),
            "requests": arguments.requests, "warmup": arguments.warmup,
            "batch_size": arguments.batch_size, "passes": arguments.passes,
            "max_load": arguments.max_load,
            "max_wait_seconds": 60 * arguments.max_wait_minutes})
        if result is None:
            continue
        if variant == REFERENCE_VARIANT:
            reference = np.load(work / variant / "probabilities.npy")
        row = compared_row(variant, result, gold, labels, reference, work)
        row.update(cpu=cpu, load=load_note(result), model=str(model), command=command)
        if arguments.no_record:
            print(json.dumps(row), flush=True)
        else:
            record_result(f"serving_{cpu_class()}", variant, row, COLUMNS)


if __name__ == "__main__":
    main()
