"""Combining model directories fine-tuned for one task (e.g. from several seeds) into one
model directory whose model averages their predictions (`keras_mapping.models.EnsembleModel`).

The result is an ordinary model directory: `evaluate`, `predict` and every `export` format
take it as they take one model, at the cost of running every member. Its
`training_config.json` names the members' directories (`"method": "ensemble"`), its
`metrics.json` holds its own validation metrics and each member's.
"""

import json
from pathlib import Path

import numpy as np

from keras_mapping.checkpoints.bert_layout import tokenizer_config
from keras_mapping.checkpoints.model_dir import METRICS_FILE, MODEL_FILE
from keras_mapping.models.ensemble import EnsembleModel, average_outputs
from keras_mapping.tasks.datasets import DataOptions
from keras_mapping.tasks.model_directory import load_model_directory, save_model_directory
from keras_mapping.training.inference import predict_outputs, read_split

ENSEMBLE_METHOD = "ensemble"
# What each member's metrics.json contributes to the ensemble's: its selection on validation.
MEMBER_METRICS = ("best_round", "train_seconds")


def _what_members_share(bundle):
    """What every member must have in common: `{name of the thing: its value}`."""
    tokenizer = bundle.tokenizer
    return {"task (columns, labels, thresholds)": bundle.task.config(),
            "vocabulary": None if tokenizer is None else tokenizer.get_vocabulary(),
            "tokenizer settings": None if tokenizer is None else tokenizer_config(tokenizer),
            "max_length": bundle.max_length}


def check_members(bundles, directories):
    """Raises ValueError naming the first directory that was trained for another task, with
    another tokenizer or another max_length than the first one."""
    reference = _what_members_share(bundles[0])
    for directory, bundle in zip(directories[1:], bundles[1:]):
        for what, value in _what_members_share(bundle).items():
            if value != reference[what]:
                raise ValueError(
                    f"'{directory}' differs from '{directories[0]}' in its {what}: the "
                    "members of an ensemble are fine-tuned for the same task from the same "
                    "preset, with the same max_length.")


def _check_out(out, directories):
    if (out / MODEL_FILE).exists():
        raise ValueError(f"'{out}' already holds a model; give --out a new directory.")
    if any(out.resolve() == Path(directory).resolve() for directory in directories):
        raise ValueError(f"--out '{out}' is one of the members; give a new directory.")


def _member_summary(directory, bundle, monitor, metrics):
    return {"model": str(directory), monitor: metrics.get(monitor),
            f"last_round_{monitor}": metrics.get(f"last_round_{monitor}"),
            **{name: metrics.get(name) for name in MEMBER_METRICS},
            "seed": bundle.training_config.get("seed")}


def ensemble(model_directories, out, dataset=None, split="validation", data_dir=None,
             max_examples=None, on_bad_bytes="error", print_fn=print):
    """Writes the ensemble of `model_directories` to `out` and returns its metrics on a
    dataset split, with each member's score on the same split.

    Args:
        model_directories: two or more directories written by `finetune` for the same task
            (same labels and columns), preset tokenizer and max_length.
        out: the ensemble's model directory (must not hold a model yet).
        dataset: the data to score on; None: the first member's training dataset.
        split: the split to score (the members' validation split by default; their best
            rounds were chosen on it, so it flatters members and ensemble alike).
        data_dir: overrides `$KERAS_MAPPING_DATA_DIR` (None: the first member's).
        max_examples: score only the first N examples.
        on_bad_bytes: "error" or "replace", for undecodable bytes in data files.
        print_fn: where the summary line goes.

    Raises:
        ValueError: fewer than two members, members that differ (the directory is named), or
            an `out` that already holds a model.
    """
    directories = [Path(directory) for directory in model_directories]
    if len(directories) < 2:
        raise ValueError(f"An ensemble needs at least two model directories, got "
                         f"{len(directories)}.")
    out = Path(out)
    _check_out(out, directories)
    bundles = [load_model_directory(directory) for directory in directories]
    check_members(bundles, directories)
    first = bundles[0]
    config = {"method": ENSEMBLE_METHOD, "members": [str(d) for d in directories],
              "max_length": first.max_length,
              "dataset": dataset or first.training_config.get("dataset"),
              "data_dir": data_dir or first.training_config.get("data_dir")}
    options = DataOptions(data_dir=config["data_dir"], on_bad_bytes=on_bad_bytes)
    # One reading and tokenization of the split, one pass of each member; the ensemble is
    # scored on their outputs, combined as its model combines them.
    examples = read_split(first, config["dataset"], split, options, max_examples)
    ready = first.task.prepared(examples, first.tokenizer, first.max_length)
    outputs = [predict_outputs(bundle, ready) for bundle in bundles]
    scores = [first.task.report(output, examples) for output in outputs]
    activation = first.task.output_activation
    metrics = first.task.report(np.asarray(average_outputs(outputs, activation)), examples)
    metrics.update(task=first.task.name, split=split, dataset=str(config["dataset"]))
    model = EnsembleModel([bundle.model for bundle in bundles], activation=activation,
                          name="ensemble")
    monitor = first.task.monitor
    metrics["members"] = [_member_summary(directory, bundle, monitor,
                                          {**_read_metrics(directory), **score})
                          for directory, bundle, score in zip(directories, bundles, scores)]
    save_model_directory(out, model, first.tokenizer, first.task, config, metrics)
    print_fn(f"ensemble: {len(bundles)} members; {split} {monitor} {metrics[monitor]:.4f} "
             f"(members: {', '.join(f'{score[monitor]:.4f}' for score in scores)}); model "
             f"directory {out}")
    return metrics


def _read_metrics(directory):
    """What a member's metrics.json says of its training (its selection on validation)."""
    path = directory / METRICS_FILE
    if not path.is_file():
        return {}
    metrics = json.loads(path.read_text(encoding="utf-8"))
    # The member's score itself is measured again, on the ensemble's split.
    return {name: value for name, value in metrics.items()
            if name in MEMBER_METRICS or name.startswith("last_round_")}
