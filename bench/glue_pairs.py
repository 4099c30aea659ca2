"""Sentence-pair benchmarks (GLUE RTE and STS-B): our defaults, and KerasHub on RTE.

Usage (from the repository root, after `make setup`):

    .venv/bin/python bench/glue_pairs.py [--parts rte,stsb,kerashub_rte] [--data DIR]
        [--out DIR] [--extra-flags "..."] [--results-dir DIR]
    .venv/bin/python bench/glue_pairs.py --parts stsb,rte_after_stsb

Each part records a row in the "glue_pairs" table of BENCHMARKS.md:
- rte, stsb: `keras-mapping finetune --preset minilm_l6 --dataset DATA/{rte,stsb} --out DIR
  --verbose 2` (the tool finds the pair columns and the task itself; no other flag, so these
  measure the defaults), then `keras-mapping evaluate ... --split validation`. RTE reports
  accuracy, STS-B Pearson and Spearman x 100. The recipe (epochs, batch size, learning rate,
  max length) comes from the model's training_config.json. seconds_per_epoch is finetune's
  train_seconds / epochs, so it includes the validation rounds; finetune_wall_seconds also
  includes loading and saving; peak memory is that of the finetune process.
- rte_after_stsb: the rte part started from the stsb part's model directory (`--preset
  OUT/stsb`: its fine-tuned encoder under a new head), STS-B serving as an intermediate
  task; run after the stsb part.
- kerashub_rte: KerasHub's `BertTextClassifier.from_preset(minilm_l6 dir, num_classes=2)` with
  its own preprocessor, fed string pairs through tf.data, on ours' recipe as read from
  OUT/rte/training_config.json (else from --epochs, --batch-size, --learning-rate,
  --max-length): AdamW with the same linear warmup and decay, clipping and precision, the
  training examples in the same seeded shuffled order, sparse cross-entropy on logits, no
  validation during training. seconds_per_epoch is the time of fit / epochs after an
  untimed warm-up fit that traces (its weight and optimizer changes are undone);
  finetune_wall_seconds covers the whole part; peak memory is that of this process.

`--extra-flags` appends flags to our finetune commands (experiments; the rows then no longer
show the defaults). `--results-dir` stores rows elsewhere and renders the table into
RESULTS_DIR/BENCHMARKS.md instead of the real one (smoke runs).
"""

import argparse
import csv
import json
import os
import resource
import shlex
import shutil
import sys
import time
from pathlib import Path

import results_table
from finetune_sst2 import run
from results_table import cpu_description, record_result, shown_command

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "keras_mapping.cli.main"]
COLUMNS = ("part", "command", "accuracy", "pearson", "spearman", "best_round", "last_round",
           "epochs", "batch_size",
           "learning_rate", "max_length", "precision", "seconds_per_epoch", "train_seconds",
           "finetune_wall_seconds", "peak_memory_mib", "cpu", "measured_at")
# Used by kerashub_rte when OUT/rte/training_config.json does not exist (flags override the
# first four).
FALLBACK_RECIPE = {"epochs": 3, "batch_size": 32, "learning_rate": 5e-5, "max_length": 128,
                   "warmup_ratio": 0.1, "weight_decay": 0.01, "decay": "linear",
                   "precision": "auto", "seed": 42}
WARMUP_STEPS = 2


def recipe_of(model_dir):
    return json.loads((Path(model_dir) / "training_config.json").read_text())


def ours_part(task, data, out, extra_flags, limits, preset="minilm_l6", part=None):
    """Our finetune defaults on one GLUE pair task from `preset`, then evaluate on its
    validation split; the model goes to OUT/PART (PART: the task's name by default)."""
    part = part or task
    out = Path(out) / part
    shutil.rmtree(out, ignore_errors=True)
    dataset = os.path.join(data, task)
    command = CLI + ["finetune", "--preset", str(preset), "--dataset", dataset, "--out",
                     str(out), "--verbose", "2"] + extra_flags
    if limits.max_train_examples:
        command += ["--max-train-examples", str(limits.max_train_examples)]
    if limits.max_eval_examples:
        command += ["--max-eval-examples", str(limits.max_eval_examples)]
    seconds, peak_mib, last = run(command)
    trained = json.loads(last)
    evaluate = CLI + ["evaluate", "--model", str(out), "--dataset", dataset,
                      "--split", "validation"]
    if limits.max_eval_examples:
        evaluate += ["--max-examples", str(limits.max_eval_examples)]
    evaluated = json.loads(run(evaluate)[2])

    from keras_mapping.training.precision import resolve_precision

    recipe = recipe_of(out)
    row = {"part": part, "command": shown_command(command[len(CLI):])}
    row.update({key: round(evaluated[key], 4 if key in ("accuracy", "f1") else 2)
                for key in ("accuracy", "f1", "pearson", "spearman") if key in evaluated})
    row.update({key: recipe[key] for key in ("epochs", "batch_size", "learning_rate",
                                             "max_length")})
    row.update(
        # what finetune resolved "auto" to: the same function on the same machine
        precision=resolve_precision(recipe.get("precision", "auto")),
        seconds_per_epoch=round(trained["train_seconds"] / recipe["epochs"], 1),
        train_seconds=trained["train_seconds"],
        finetune_wall_seconds=round(seconds, 1),
        peak_memory_mib=round(peak_mib),
        trainable_parameters=trained.get("trainable_parameters"),
        # the kept round is chosen on validation itself: its monitored score in the last
        # round beside it (accuracy for RTE, Spearman for STS-B)
        best_round=trained.get("best_round"),
        last_round=next((value for key, value in trained.items()
                         if key.startswith("last_round_")), None),
    )
    return row


def rte_after_stsb_part(data, arguments):
    """RTE with the defaults, started from the model the stsb part fine-tuned (OUT/stsb):
    STS-B as an intermediate task. Its wall time is RTE's alone; the stsb row has STS-B's."""
    stsb = Path(arguments.out) / "stsb"
    if not (stsb / "model.keras").is_file():
        raise SystemExit(f"rte_after_stsb starts from {stsb}, which the stsb part writes: "
                         "run --parts stsb,rte_after_stsb.")
    return ours_part("rte", data, arguments.out, shlex.split(arguments.extra_flags), arguments,
                     preset=os.path.relpath(stsb, ROOT), part="rte_after_stsb")


def read_pairs(path, limit=None):
    """(sentence1 list, sentence2 list, label name list) of a GLUE TSV (no quoting)."""
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE))[:limit]
    return ([row["sentence1"] for row in rows], [row["sentence2"] for row in rows],
            [row["label"] for row in rows])


def pair_dataset(pairs, label_ids, batch_size, seed=None):
    """((sentence1, sentence2), label) batches of strings, shuffled and repeated like ours'
    training data when a seed is given. No autotuning: its thread holds the end of each
    `fit` until its next wake-up (see bench/throughput.py)."""
    import tensorflow as tf

    first, second, labels = pairs
    data = tf.data.Dataset.from_tensor_slices(((first, second), [label_ids[x] for x in labels]))
    if seed is not None:
        # same op as ours' pipeline with the same global and op seeds: same example order
        data = data.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True).repeat()
    options = tf.data.Options()
    options.autotune.enabled = False
    return data.batch(batch_size).with_options(options)


def untimed_warmup(classifier, data):
    """Traces the train step with a short fit, then puts back the weights and the optimizer
    state, so the timed fit trains as if it came first."""
    import keras

    weights = classifier.get_weights()
    classifier.fit(data, steps_per_epoch=WARMUP_STEPS, epochs=1, verbose=0, shuffle=False)
    classifier.set_weights(weights)
    for variable in classifier.optimizer.variables:  # iterations and Adam moments
        if not variable.path.endswith("learning_rate"):  # a variable when not a schedule
            variable.assign(keras.ops.zeros(variable.shape, variable.dtype))


def kerashub_recipe(out, arguments):
    """Ours' RTE recipe when our rte part has run into OUT, else the fallback and flags."""
    config = Path(out) / "rte" / "training_config.json"
    if config.exists():
        return {**FALLBACK_RECIPE, **recipe_of(config.parent)}, str(config).replace(f"{ROOT}/", "")
    recipe = dict(FALLBACK_RECIPE)
    for key in ("epochs", "batch_size", "learning_rate", "max_length"):
        if getattr(arguments, key) is not None:
            recipe[key] = getattr(arguments, key)
    return recipe, "flags"


def kerashub_rte_part(data, out, arguments):
    started = time.time()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    import keras_hub

    from keras_mapping.checkpoints import resolve_preset
    from keras_mapping.training.precision import PRECISION_POLICIES, resolve_precision
    from keras_mapping.training.schedules import WarmupDecay

    recipe, source = kerashub_recipe(out, arguments)
    train = read_pairs(Path(data) / "rte" / "train.tsv", arguments.max_train_examples)
    validation = read_pairs(Path(data) / "rte" / "validation.tsv", arguments.max_eval_examples)
    label_ids = {name: index for index, name in enumerate(sorted(set(train[2])))}
    batch_size = recipe["batch_size"]
    total_steps = max(1, round(recipe["epochs"] * -(-len(train[2]) // batch_size)))

    keras.utils.set_random_seed(recipe["seed"])  # as ours, before building anything
    precision = resolve_precision(recipe["precision"])
    keras.config.set_dtype_policy(PRECISION_POLICIES[precision])
    classifier = keras_hub.models.BertTextClassifier.from_preset(
        str(resolve_preset("minilm_l6")), num_classes=len(label_ids))
    classifier.preprocessor.sequence_length = recipe["max_length"]
    # ours' create_optimizer, spelled out: AdamW, no decay on LayerNorm and biases, clipping
    optimizer = keras.optimizers.AdamW(
        WarmupDecay(recipe["learning_rate"], total_steps, decay=recipe["decay"],
                    warmup_steps=int(recipe["warmup_ratio"] * total_steps)),
        weight_decay=recipe["weight_decay"], global_clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    classifier.compile(optimizer=optimizer,
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])

    # a dataset of its own for the warm-up, so the timed fit gets the first shuffled order
    untimed_warmup(classifier, pair_dataset(train, label_ids, batch_size, recipe["seed"]))
    training_data = pair_dataset(train, label_ids, batch_size, recipe["seed"])
    fit_started = time.time()
    classifier.fit(training_data, steps_per_epoch=total_steps, epochs=1, verbose=0,
                   shuffle=False)  # the dataset shuffles, seeded
    train_seconds = time.time() - fit_started
    evaluated = classifier.evaluate(pair_dataset(validation, label_ids, 64), verbose=0,
                                    return_dict=True)
    return {
        "part": "kerashub_rte",
        "command": (f"keras_hub BertTextClassifier.from_preset(minilm_l6 dir, num_classes=2), "
                    f"own preprocessor, recipe from {source}"),
        "accuracy": round(float(evaluated["accuracy"]), 4),
        **{key: recipe[key] for key in ("epochs", "batch_size", "learning_rate", "max_length")},
        "precision": precision,
        "seconds_per_epoch": round(train_seconds / recipe["epochs"], 1),
        "train_seconds": round(train_seconds, 1),
        "finetune_wall_seconds": round(time.time() - started, 1),
        "peak_memory_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "trainable_parameters": sum(int(keras.ops.size(w)) for w in
                                    classifier.trainable_weights),
        "train_examples": len(train[2]),
        "validation_examples": len(validation[2]),
    }


def redirect_results(results_dir):
    """Rows into RESULTS_DIR and the table into RESULTS_DIR/BENCHMARKS.md (a copy of the
    real one), leaving bench/results and BENCHMARKS.md alone."""
    results_dir = Path(results_dir).resolve()
    if results_dir == results_table.RESULTS.resolve():
        return
    results_dir.mkdir(parents=True, exist_ok=True)
    benchmarks = results_dir / "BENCHMARKS.md"
    if not benchmarks.exists():
        shutil.copy(results_table.BENCHMARKS, benchmarks)
    results_table.RESULTS, results_table.BENCHMARKS = results_dir, benchmarks


def add_run_flags(parser, out_name):
    """--out, --extra-flags and --results-dir, shared with sst2_against_commit.py."""
    parser.add_argument("--out", default=str(ROOT / "saved_models" / out_name),
                        help="Where the fine-tuned models go (default: %(default)s).")
    parser.add_argument("--extra-flags", default="",
                        help="Flags appended to our finetune commands (experiments).")
    parser.add_argument("--results-dir", default=str(results_table.RESULTS),
                        help="Where rows go; elsewhere than bench/results, the table is "
                             "rendered into RESULTS_DIR/BENCHMARKS.md (default: %(default)s).")


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="rte,stsb,kerashub_rte",
                        help="Comma-separated parts to run (default: %(default)s).")
    parser.add_argument("--data", default=os.environ.get("KERAS_MAPPING_DATA_DIR",
                                                         str(ROOT.parent / "shared" / "data")),
                        help="Folder with rte/ and stsb/ (default: $KERAS_MAPPING_DATA_DIR or "
                             "../shared/data).")
    add_run_flags(parser, "bench_pairs")
    for flag, kind in (("--epochs", float), ("--batch-size", int), ("--learning-rate", float),
                       ("--max-length", int)):
        parser.add_argument(flag, type=kind, default=None,
                            help="kerashub_rte's recipe when OUT/rte has none (default: "
                                 f"{FALLBACK_RECIPE[flag[2:].replace('-', '_')]}).")
    # Smoke runs only: cut the data of every part.
    parser.add_argument("--max-train-examples", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--max-eval-examples", type=int, default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def main():
    arguments = parse_arguments()
    redirect_results(arguments.results_dir)
    # relative to the repository root (the commands' cwd), so the table shows ../shared/data
    data = os.path.relpath(arguments.data, ROOT)
    cpu = cpu_description()
    for part in arguments.parts.split(","):
        if part in ("rte", "stsb"):
            result = ours_part(part, data, arguments.out, shlex.split(arguments.extra_flags),
                               arguments)
        elif part == "rte_after_stsb":
            result = rte_after_stsb_part(data, arguments)
        elif part == "kerashub_rte":
            result = kerashub_rte_part(os.path.join(ROOT, data), arguments.out, arguments)
        else:
            raise SystemExit(f"unknown part {part!r}")
        record_result("glue_pairs", part, {**result, "cpu": cpu}, COLUMNS,
                      percent_columns=("accuracy",))


if __name__ == "__main__":
    main()
