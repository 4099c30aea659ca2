"""Named-entity recognition on CoNLL-2003: our defaults, from scratch, and PyTorch's BERT.

Usage (from the repository root, after `make setup`; the PyTorch part needs an interpreter
with torch and transformers, e.g. `python3 -m venv /tmp/tvenv && /tmp/tvenv/bin/pip install
torch==2.13.0 transformers safetensors numpy`):

    KERAS_BACKEND=tensorflow TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python bench/conll_ner.py \
        [--parts ours,scratch,pytorch] [--data DIR] [--out DIR] [--extra-flags "..."] \
        [--torch-python PYTHON] [--results-dir DIR] [--no-record] \
        [--max-train-sentences N] [--max-eval-sentences N]

The data are CoNLL-2003's train.txt (14,041 sentences) and validation.txt (3,250, the dev
split published F1s are measured on) under DATA/conll2003 (default: $KERAS_MAPPING_DATA_DIR
or ../shared/data). Every part is scored on the whole validation split by the same code,
`keras_mapping.tasks.entity_metrics.entity_scores` (entity level, exact span and type; F1,
precision and recall x 100), and records a row in the "conll_ner" table of BENCHMARKS.md
(and a line in bench/results/conll_ner.jsonl):
- ours: `keras-mapping finetune --preset minilm_l6 --dataset conll2003 --out OUT/ours
  --verbose 2` (no other flag: it measures the defaults). Scores from OUT/ours/metrics.json
  (the best of the validation rounds), the recipe from OUT/ours/training_config.json.
  train_seconds is finetune's own (validation rounds included), seconds_per_epoch that over
  the epochs, finetune_wall_seconds the whole process (loading and saving too), peak memory
  that of the finetune process (`finetune_sst2.run`: the largest child so far, so scratch
  after ours reports the larger of the two).
- scratch: the same command with `--from-scratch` (random weights, same architecture).
- pytorch: Hugging Face `BertForTokenClassification` (eager, CPU, as many threads as cores)
  from the same checkpoint directory (`resolve_preset("minilm_l6")`), run by `--torch-python`
  (skipped with a note when it cannot import torch and transformers), on ours' recipe read
  from OUT/ours/training_config.json (else `FALLBACK_RECIPE`):
  the same sentences and IOB2 tags (read here with `read_conll`), the same labels (every
  basic word a CoNLL word splits into, by the tokenizer's normaliser and pre-tokenizer, is
  labelled on its first piece: the first with the word's tag, the rest with its `I-`
  continuation; a word is predicted from its first piece), batches of one exact length from
  a seeded shuffle, the same steps, rounds and validation rounds (`Rounds.of_epochs`), the
  learning rate of each step computed by ours' `WarmupDecay`, AdamW as Keras computes it
  (epsilon 1e-7 applied after bias correction, decoupled decay off for biases and
  LayerNorm), global norm clipping at 1.0, cross-entropy averaged over labelled pieces,
  frozen embeddings, dropout, a truncated-normal head, the float32 head over a bf16
  autocast encoder when ours ran in bf16, and the best validation round kept. Its
  predicted tags per round go to OUT/pytorch/predictions.json and are scored here.
  Remaining differences are stated in the row's notes (sentences over max_length are cut,
  not windowed; another shuffle order; other dropout masks and bf16 casting rules).

`--max-train-sentences` and `--max-eval-sentences` cut both implementations' data alike
(smoke runs); such runs record nothing. `--extra-flags` appends flags to our finetune
commands (experiments; the PyTorch part follows ours' recipe, whatever it was).
"""

import argparse
import json
import math
import os
import resource
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import results_table
from finetune_sst2 import run
from glue_pairs import add_run_flags, recipe_of, redirect_results
from results_table import cpu_description, record_result, shown_command
from throughput import torch_available

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "keras_mapping.cli.main"]
NAME = "conll_ner"
ENTITY_TYPES = ("PER", "LOC", "ORG", "MISC")
COLUMNS = ("part", "command", "f1", "entity_precision", "entity_recall", *ENTITY_TYPES,
           "epochs", "batch_size", "learning_rate", "max_length", "precision",
           "train_seconds", "seconds_per_epoch", "train_examples_per_second",
           "peak_memory_mib", "finetune_wall_seconds", "notes", "cpu", "measured_at")
# The PyTorch part's recipe when OUT/ours/training_config.json does not exist: finetune's
# defaults for CoNLL-2003 (fewer than 20,000 training sentences: SMALL_DATA_RECIPE).
FALLBACK_RECIPE = {"epochs": 4.0, "batch_size": 16, "learning_rate": 5e-5, "max_length": 128,
                   "warmup_ratio": 0.1, "decay": "linear", "weight_decay": 0.01,
                   "dropout": 0.1, "freeze": 0, "freeze_embeddings": True,
                   "label_all_pieces": False, "evaluations_per_epoch": 3, "seed": 42,
                   "precision": "auto"}
# Recipe settings the PyTorch part does not mirror, and the values under which that is moot.
UNMIRRORED = {"method": "full", "layerwise_decay": None, "gradual_unfreezing": 0,
              "from_scratch": False, "jit_compile": False, "early_stopping_patience": None}
IGNORED = -100  # PyTorch's ignore_index: pieces without a target
ADAM_EPSILON, ADAM_BETA_2 = 1e-7, 0.999  # Keras' AdamW defaults, which ours uses
VALIDATION_BATCH_SIZE = 64  # ours' (keras_mapping.training.finetune)


# ----------------------------------------------------------------------------------------
# The PyTorch worker: run by --torch-python as `conll_ner.py --torch-worker JOB.json`. It
# imports torch, transformers and NumPy, nothing from keras_mapping.


def basic_words(backend, words):
    """The basic words of a sentence's CoNLL words (normalised, split on whitespace and
    punctuation as the tokenizer splits text) and the CoNLL word each comes from."""
    split, owners = [], []
    for index, word in enumerate(words):
        for text, _ in backend.pre_tokenizer.pre_tokenize_str(
                backend.normalizer.normalize_str(word)):
            split.append(text)
            owners.append(index)
    return split, owners


def piece_labels(word_ids, owners, tags, continuation, label_all_pieces):
    """Per piece, its target (IGNORED where unscored), and the CoNLL word each position
    predicts (its first piece; -1 elsewhere)."""
    labels, scored, previous = [], [], None
    for basic in word_ids:
        if basic is None:  # [CLS], [SEP]
            labels.append(IGNORED)
            scored.append(-1)
            previous = None
            continue
        word = owners[basic]
        starts_basic = basic != previous
        starts_word = starts_basic and (basic == 0 or owners[basic - 1] != word)
        tag = tags[word] if starts_word else continuation[tags[word]]
        labels.append(tag if starts_basic or label_all_pieces else IGNORED)
        scored.append(word if starts_word else -1)
        previous = basic
    return labels, scored


def encode(tokenizer, sentences, tags, job):
    """`(encoded sentences, how many were cut)`: each `(ids, labels, scored)`, cut to
    max_length ([SEP] kept last)."""
    index = {name: i for i, name in enumerate(job["tag_names"])}
    continuation = job["continuation"]  # ours' continuation_ids: B-X -> I-X
    limit, encoded, cut = job["recipe"]["max_length"], [], 0
    for words, word_tags in zip(sentences, tags or [None] * len(sentences)):
        split, owners = basic_words(tokenizer.backend_tokenizer, words)
        pieces = tokenizer(split, is_split_into_words=True)
        tag_ids = [index[tag] for tag in word_tags] if word_tags else [0] * len(words)
        labels, scored = piece_labels(pieces.word_ids(), owners, tag_ids, continuation,
                                      job["recipe"]["label_all_pieces"])
        ids = pieces["input_ids"]
        if len(ids) > limit:
            cut += 1
            ids, labels = ids[:limit - 1] + ids[-1:], labels[:limit - 1] + [IGNORED]
            scored = scored[:limit - 1] + [-1]
        encoded.append((ids, labels, scored))
    return encoded, cut


def torch_model(job):
    """The checkpoint under BertForTokenClassification with ours' dropout, freezing and head
    initialisation (truncated normal, stddev 0.02, cut at two deviations)."""
    import torch
    from transformers import BertForTokenClassification

    recipe = job["recipe"]
    torch.manual_seed(recipe["seed"])
    dropout = recipe["dropout"]
    model = BertForTokenClassification.from_pretrained(
        job["checkpoint"], num_labels=len(job["tag_names"]), hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout, classifier_dropout=dropout)
    torch.nn.init.trunc_normal_(model.classifier.weight, std=0.02, a=-0.04, b=0.04)
    torch.nn.init.zeros_(model.classifier.bias)
    model.bert.embeddings.requires_grad_(not recipe["freeze_embeddings"])
    for layer in model.bert.encoder.layer[:recipe["freeze"]]:
        layer.requires_grad_(False)
    return model


def torch_optimizer(model, weight_decay):
    """AdamW with decoupled decay off for biases and LayerNorm (Keras' bias/gamma/beta)."""
    import torch

    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    plain = [p for name, p in trainable if "bias" in name or "LayerNorm" in name]
    decayed = [p for name, p in trainable if not ("bias" in name or "LayerNorm" in name)]
    return torch.optim.AdamW([{"params": decayed, "weight_decay": weight_decay},
                              {"params": plain, "weight_decay": 0.0}],
                             lr=0.0, betas=(0.9, ADAM_BETA_2), eps=ADAM_EPSILON)


def logits_of(model, ids, mask, bf16):
    """Logits in float32: the encoder under bf16 autocast when asked, the head in float32
    (as ours' float32 output layer under mixed precision)."""
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        sequence = model.bert(input_ids=ids, attention_mask=mask,
                              token_type_ids=torch.zeros_like(ids)).last_hidden_state
    return model.classifier(model.dropout(sequence.float()))


def train_step(model, optimizer, batch, step, job):
    """One optimizer step on a batch of equally long sentences, at ours' learning rate of
    this step; Keras' epsilon (added to sqrt(v) before bias correction) rescaled to the
    place where PyTorch adds it."""
    import torch

    for group in optimizer.param_groups:
        group["lr"] = job["learning_rates"][step]
        group["eps"] = ADAM_EPSILON / math.sqrt(1 - ADAM_BETA_2 ** (step + 1))
    ids = torch.tensor([item[0] for item in batch])
    labels = torch.tensor([item[1] for item in batch])
    logits = logits_of(model, ids, torch.ones_like(ids), job["precision"] == "bf16")
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(),
                                             ignore_index=IGNORED)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    optimizer.step()
    optimizer.zero_grad()
    return float(loss)


def predicted_tags(model, encoded, word_counts, job):
    """Per sentence, the tag of each word from its first piece ("O" for words cut off or
    without pieces), in batches of ours' validation size padded to their longest."""
    import torch

    model.eval()
    names, tags = job["tag_names"], []
    with torch.inference_mode():
        for start in range(0, len(encoded), VALIDATION_BATCH_SIZE):
            batch = encoded[start:start + VALIDATION_BATCH_SIZE]
            longest = max(len(item[0]) for item in batch)
            padded = torch.tensor([item[0] + [0] * (longest - len(item[0])) for item in batch])
            mask = torch.tensor([[1] * len(item[0]) + [0] * (longest - len(item[0]))
                                 for item in batch])
            best = logits_of(model, padded, mask, job["precision"] == "bf16").argmax(-1)
            for row, (_, _, scored) in zip(best.tolist(), batch):
                words = ["O"] * word_counts[len(tags)]
                for position, word in enumerate(scored):
                    if word >= 0:
                        words[word] = names[row[position]]
                tags.append(words)
    model.train()
    return tags


def train_and_predict(model, train, validation, job, log):
    """Ours' rounds: each `steps_per_round` steps on exact-length batches from a seeded
    shuffle (`recipe_search_torch.bucketed_batches`), then the validation tags."""
    import numpy as np

    from recipe_search_torch import bucketed_batches

    recipe, counts = job["recipe"], [len(words) for words in job["validation"]["words"]]
    batches = bucketed_batches(np.array([len(item[0]) for item in train]),
                               recipe["batch_size"], recipe["seed"], "exact")
    optimizer, rounds, step = torch_optimizer(model, recipe["weight_decay"]), [], 0
    model.train()
    started = time.time()
    for round_index in range(job["rounds"]):
        for _ in range(job["steps_per_round"]):
            loss = train_step(model, optimizer, [train[i] for i in next(batches)], step, job)
            step += 1
        rounds.append({"round": round_index + 1, "step": step, "loss": round(loss, 4),
                       "seconds": round(time.time() - started, 1),
                       "tags": predicted_tags(model, validation, counts, job)})
        log(f"round {round_index + 1}/{job['rounds']}: step {step}, last loss {loss:.4f}, "
            f"{rounds[-1]['seconds']} s")
    return rounds, time.time() - started


def torch_worker(job_path):
    started = time.time()
    import torch
    import transformers

    job = json.loads(Path(job_path).read_text())
    out = Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    log_file = open(out / "log.txt", "w", encoding="utf-8")
    log = lambda line: print(line, file=log_file, flush=True)  # noqa: E731
    torch.set_num_threads(job["threads"])
    torch.set_num_interop_threads(job["threads"])
    tokenizer = transformers.AutoTokenizer.from_pretrained(job["checkpoint"])
    train, cut_train = encode(tokenizer, job["train"]["words"], job["train"]["tags"], job)
    validation, cut_validation = encode(tokenizer, job["validation"]["words"], None, job)
    log(f"{len(train)} training / {len(validation)} validation sentences; cut to max_length: "
        f"{cut_train} / {cut_validation}")
    model = torch_model(job)
    rounds, train_seconds = train_and_predict(model, train, validation, job, log)
    (out / "predictions.json").write_text(json.dumps({"tag_names": job["tag_names"],
                                                      "rounds": rounds}) + "\n")
    steps = job["rounds"] * job["steps_per_round"]
    print(json.dumps({
        "train_seconds": round(train_seconds, 1),
        "train_examples_per_second": round(steps * job["recipe"]["batch_size"]
                                           / train_seconds, 1),
        "wall_seconds": round(time.time() - started, 1),
        "peak_memory_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "truncated_train_sentences": cut_train, "truncated_validation_sentences": cut_validation,
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "attention": model.config._attn_implementation, "threads": torch.get_num_threads(),
        "versions": f"torch {torch.__version__}, transformers {transformers.__version__}",
    }), flush=True)


# ----------------------------------------------------------------------------------------
# The parent, in our venv: runs the parts, scores, records.


def entity_columns(scores):
    """F1, precision, recall and per-type F1, x 100."""
    row = {"f1": round(100 * scores["f1"], 2),
           "entity_precision": round(100 * scores["precision"], 2),
           "entity_recall": round(100 * scores["recall"], 2)}
    for entity_type in ENTITY_TYPES:
        found = scores["per_type"].get(entity_type)
        row[entity_type] = round(100 * found["f1"], 2) if found else ""
    return row


def recipe_columns(recipe, train_seconds):
    from keras_mapping.training.precision import resolve_precision

    return {**{key: recipe[key] for key in ("epochs", "batch_size", "learning_rate",
                                            "max_length")},
            # what "auto" resolves to: the same function on the same machine as finetune's
            "precision": resolve_precision(recipe.get("precision", "auto")),
            "train_seconds": train_seconds,
            "seconds_per_epoch": round(train_seconds / recipe["epochs"], 1)}


def ours_part(part, arguments):
    """Our finetune defaults (with --from-scratch for "scratch"); scores from metrics.json."""
    out = Path(arguments.out) / part
    command = CLI + ["finetune", "--preset", "minilm_l6", "--dataset", "conll2003", "--out",
                     str(out), "--verbose", "2"]
    command += ["--from-scratch"] if part == "scratch" else []
    command += shlex.split(arguments.extra_flags)
    for flag, value in (("--max-train-examples", arguments.max_train_sentences),
                        ("--max-eval-examples", arguments.max_eval_sentences)):
        command += [flag, str(value)] if value else []
    shutil.rmtree(out, ignore_errors=True)  # finetune refuses a folder holding another run
    seconds, peak_mib, _ = run(command)
    metrics = json.loads((out / "metrics.json").read_text())
    recipe = recipe_of(out)
    return {"part": part, "command": shown_command(command[len(CLI):]),
            **entity_columns(metrics), **recipe_columns(recipe, metrics["train_seconds"]),
            "train_examples_per_second": metrics["train_examples_per_second"],
            "peak_memory_mib": round(peak_mib), "finetune_wall_seconds": round(seconds, 1),
            "best_round": metrics.get("best_round"),
            "trainable_parameters": metrics.get("trainable_parameters"),
            "token_accuracy": round(100 * metrics["token_accuracy"], 2)}


def pytorch_recipe(arguments):
    """`(recipe, where it came from)`: ours' run's, else FALLBACK_RECIPE. Refuses the
    recipe of a cut (smoke) ours run for a run on the whole data."""
    config = Path(arguments.out) / "ours" / "training_config.json"
    if not config.exists():
        return dict(FALLBACK_RECIPE), "FALLBACK_RECIPE (no ours run)"
    recipe = {**FALLBACK_RECIPE, **recipe_of(config.parent)}
    if recipe.get("max_train_examples") and not arguments.max_train_sentences:
        raise SystemExit(f"{config} is a smoke run's (max_train_examples "
                         f"{recipe['max_train_examples']}); run the ours part first.")
    return recipe, str(config).replace(f"{ROOT}/", "")


def read_sentences(data, arguments):
    """Training and validation `TaggedSentences`, cut like ours' (`head`)."""
    from keras_mapping.data.token_files import read_conll

    train = read_conll(Path(data) / "conll2003" / "train.txt")
    validation = read_conll(Path(data) / "conll2003" / "validation.txt")
    if arguments.max_train_sentences:
        train = train.head(arguments.max_train_sentences)
    if arguments.max_eval_sentences:
        validation = validation.head(arguments.max_eval_sentences)
    return train, validation


def pytorch_job(recipe, train, validation, out):
    """The worker's job: data, recipe, ours' rounds and the learning rate of every step."""
    import numpy as np

    from keras_mapping.checkpoints.presets import resolve_preset
    from keras_mapping.data.tagging import continuation_ids
    from keras_mapping.training.engine import Rounds
    from keras_mapping.training.precision import resolve_precision
    from keras_mapping.training.schedules import WarmupDecay

    rounds = Rounds.of_epochs(len(train), recipe["batch_size"], recipe["epochs"],
                              recipe["evaluations_per_epoch"])
    schedule = WarmupDecay(recipe["learning_rate"], rounds.steps, decay=recipe["decay"],
                           warmup_steps=int(recipe["warmup_ratio"] * rounds.steps))
    return {"checkpoint": str(resolve_preset("minilm_l6")), "out": str(out),
            "recipe": recipe, "precision": resolve_precision(recipe["precision"]),
            "rounds": rounds.rounds, "steps_per_round": rounds.steps_per_round,
            "learning_rates": np.asarray(schedule(np.arange(rounds.steps))).tolist(),
            "tag_names": train.tag_names,
            "continuation": continuation_ids(train.tag_names).tolist(),
            "threads": len(os.sched_getaffinity(0)),
            "train": {"words": train.words, "tags": train.tags},
            "validation": {"words": validation.words}}


def best_round(predictions, validation):
    """`(scores, round)` of the best validation round (the first of equals, as ours keeps)."""
    from keras_mapping.tasks.entity_metrics import entity_scores

    best = None
    for found in predictions["rounds"]:
        scores = entity_scores(validation.tags, found["tags"])
        if best is None or scores["f1"] > best[0]["f1"]:
            best = scores, found["round"]
    return best


def pytorch_notes(recipe, worker):
    notes = [f"best of {worker['rounds']} validation rounds, as ours",
             "labels every basic word (exact mirror of ours)",
             f"cut to max_length, not windowed: {worker['truncated_train_sentences']} training"
             f" / {worker['truncated_validation_sentences']} validation sentences",
             "numpy-seeded shuffle, not tf.data's", worker["versions"]]
    notes += [f"{key}={recipe[key]!r} NOT mirrored" for key, moot in UNMIRRORED.items()
              if recipe.get(key, moot) != moot]
    return "; ".join(notes)


def pytorch_part(arguments, data):
    recipe, source = pytorch_recipe(arguments)
    train, validation = read_sentences(data, arguments)
    out = Path(arguments.out) / "pytorch"
    with tempfile.TemporaryDirectory() as folder:
        job = pytorch_job(recipe, train, validation, out)
        (Path(folder) / "job.json").write_text(json.dumps(job))
        seconds, _, last = run([arguments.torch_python, str(Path(__file__).resolve()),
                                "--torch-worker", str(Path(folder) / "job.json")])
    worker = {**json.loads(last), "rounds": job["rounds"]}
    scores, chosen = best_round(json.loads((out / "predictions.json").read_text()), validation)
    return {"part": "pytorch",
            "command": (f"bench/conll_ner.py --parts pytorch: HF BertForTokenClassification "
                        f"(PyTorch eager, CPU, {worker['threads']} threads) on the minilm_l6 "
                        f"checkpoint, recipe from {source}"),
            **entity_columns(scores), **recipe_columns(recipe, worker["train_seconds"]),
            "train_examples_per_second": worker["train_examples_per_second"],
            "peak_memory_mib": worker["peak_memory_mib"],
            "finetune_wall_seconds": round(seconds, 1), "notes": pytorch_notes(recipe, worker),
            "best_round": chosen, "token_accuracy": round(100 * scores["token_accuracy"], 2),
            **{key: worker[key] for key in ("truncated_train_sentences",
                                            "truncated_validation_sentences",
                                            "trainable_parameters", "attention")}}


def record(rows):
    """Each row into the table and a line of bench/results/conll_ner.jsonl."""
    for row in rows:
        record_result(NAME, row["part"], row, COLUMNS)
        with open(results_table.RESULTS / f"{NAME}.jsonl", "a", encoding="utf-8") as file:
            file.write(json.dumps(row) + "\n")


def print_summary(rows):
    for row in rows:
        print(f"{row['part']:>8}: F1 {row['f1']:.2f} (P {row['entity_precision']:.2f}, "
              f"R {row['entity_recall']:.2f}), train {row['train_seconds']} s, wall "
              f"{row['finetune_wall_seconds']} s, {row['train_examples_per_second']} "
              f"sentences/s, peak {row['peak_memory_mib']} MiB", flush=True)


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="ours,scratch,pytorch",
                        help="Comma-separated parts to run (default: %(default)s).")
    parser.add_argument("--data", default=os.environ.get("KERAS_MAPPING_DATA_DIR",
                                                         str(ROOT.parent / "shared" / "data")),
                        help="Folder with conll2003/ (default: $KERAS_MAPPING_DATA_DIR or "
                             "../shared/data).")
    add_run_flags(parser, "bench_ner")
    parser.add_argument("--torch-python", default="/tmp/tvenv/bin/python",
                        help="Interpreter with torch and transformers (default: %(default)s).")
    parser.add_argument("--no-record", action="store_true",
                        help="Print only; write no result files and leave BENCHMARKS.md.")
    for flag in ("--max-train-sentences", "--max-eval-sentences"):
        parser.add_argument(flag, type=int, default=None,
                            help="Smoke runs: the first N sentences (implies --no-record).")
    parser.add_argument("--torch-worker", help=argparse.SUPPRESS)
    return parser.parse_args()


def main():
    arguments = parse_arguments()
    if arguments.torch_worker:
        return torch_worker(arguments.torch_worker)
    redirect_results(arguments.results_dir)
    data = os.path.abspath(arguments.data)
    os.environ["KERAS_MAPPING_DATA_DIR"] = data  # where finetune finds "conll2003"
    parts = arguments.parts.split(",")
    if "pytorch" in parts and not torch_available(arguments.torch_python):
        print(f"note: torch and transformers are not importable by {arguments.torch_python}; "
              "skipping the pytorch part (pass --torch-python).", flush=True)
        parts.remove("pytorch")
    cpu, rows = cpu_description(), []
    for part in parts:
        print(f"conll_ner: running {part} ({time.strftime('%H:%M')})", flush=True)
        if part in ("ours", "scratch"):
            rows.append({**ours_part(part, arguments), "cpu": cpu})
        elif part == "pytorch":
            rows.append({**pytorch_part(arguments, data), "cpu": cpu})
        else:
            raise SystemExit(f"unknown part {part!r}")
        print(json.dumps(rows[-1]), flush=True)
    print_summary(rows)
    smoke = arguments.max_train_sentences or arguments.max_eval_sentences
    if smoke or arguments.no_record:
        print("conll_ner: not recorded" + (" (a smoke run on cut data)" if smoke else ""))
    else:
        record(rows)


if __name__ == "__main__":
    main()
