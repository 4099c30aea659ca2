"""Evaluating and applying a fine-tuned model directory, for every task."""

import itertools
import time
from pathlib import Path


from keras_mapping.tasks.datasets import DataOptions, load_task_data
from keras_mapping.tasks.model_directory import load_model_directory
from keras_mapping.training.distribute import as_distributable, create_strategy

EVAL_BATCH_SIZE = 64
WARMUP_BATCHES = 3
# Texts read ahead per model call and replica batch: bounded memory for any input size.
PREDICT_CHUNK_BATCHES = 16


def _load(model_directory, strategy):
    strategy = create_strategy(strategy)
    with strategy.scope():
        return strategy, load_model_directory(model_directory)


def _batches(bundle, examples, batch_size, strategy):
    batches = bundle.task.dataset(examples, bundle.tokenizer, max_length=bundle.max_length,
                                  batch_size=batch_size, buckets=None)
    return as_distributable(batches, strategy)


def evaluate(model_directory, dataset="sst2", split="validation", data_dir=None,
             max_examples=None, on_bad_bytes="error", strategy="auto", skip_bad_images=False):
    """The task's metrics of a model directory on a dataset split, read with the model's own
    columns and labels, with throughput (see each task's `report`: accuracy, f1, macro_f1,
    mcc and the confusion matrix for classification; pearson, spearman and mse for
    regression; micro_f1 and macro_f1 for multi-label; entity-level f1, precision, recall,
    per_type and token_accuracy for token classification; classification's and
    skipped_images for image classification).

    Args:
        model_directory: a directory written by `finetune` (or `ensemble`).
        dataset: "sst2", a folder or a TFDS name, as in `load_task_data`; or one file of
            a folder (`DIR/holdout.tsv`), which is then the split.
        split: the split to evaluate (ignored when `dataset` is a file).
        data_dir: overrides `$KERAS_MAPPING_DATA_DIR`.
        max_examples: evaluate only the first N examples.
        on_bad_bytes: "error" or "replace", for undecodable bytes in data files.
        strategy: where to compute (`keras_mapping.training.distribute.create_strategy`);
            each replica takes batches of 64.
        skip_bad_images: leave unreadable images out (counted in `skipped_images`) instead
            of stopping with their names.
    """
    strategy, bundle = _load(model_directory, strategy)
    options = DataOptions(data_dir=data_dir, on_bad_bytes=on_bad_bytes,
                          skip_bad_images=skip_bad_images)
    dataset, split = folder_and_split(dataset, split)
    return evaluate_bundle(bundle, dataset, split, options, max_examples, strategy)


def folder_and_split(dataset, split):
    """`(dataset, split)`, where a `dataset` that is a file (`holdout.tsv`) is the split of
    that name in its folder: users point at the file they want scored."""
    path = Path(str(dataset))
    return (path.parent, path.stem) if path.is_file() else (dataset, split)


def read_split(bundle, dataset, split, options, max_examples=None):
    """The examples of a dataset split, read with a model's own columns and labels."""
    _, splits = load_task_data(dataset, options, splits=(split,), task=bundle.task)
    return splits[split] if max_examples is None else splits[split].head(max_examples)


def predict_outputs(bundle, ready, strategy=None):
    """The model's outputs over examples `task.prepared` made ready (None: one device)."""
    strategy = strategy or create_strategy("default")
    data = _batches(bundle, ready, EVAL_BATCH_SIZE * strategy.num_replicas_in_sync, strategy)
    return bundle.model.predict(data, verbose=0)


def evaluate_bundle(bundle, dataset, split, options, max_examples=None, strategy=None):
    """`evaluate` of a loaded `ModelBundle`, reading the split with `options` (a
    `DataOptions`) under `strategy` (None: the default one)."""
    strategy = strategy or create_strategy("default")
    examples = read_split(bundle, dataset, split, options, max_examples)
    # Tokenized once, for the predictions and the truncation count; its time counts in the
    # throughput, as it did when the prediction pass tokenized.
    started = time.time()
    ready = bundle.task.prepared(examples, bundle.tokenizer, bundle.max_length)
    tokenize_seconds = time.time() - started
    data = _batches(bundle, ready, EVAL_BATCH_SIZE * strategy.num_replicas_in_sync, strategy)
    # Keras traces a length-generic graph once it has seen two batch lengths; tracing it
    # here keeps compilation out of the measured throughput.
    bundle.model.predict(data.take(WARMUP_BATCHES), verbose=0)
    started = time.time()
    outputs = bundle.model.predict(data, verbose=0)
    seconds = time.time() - started + tokenize_seconds
    metrics = bundle.task.report(outputs, examples)
    metrics.update(task=bundle.task.name,
                   examples_per_second=round(len(examples) / max(seconds, 1e-9), 1),
                   truncated_examples=bundle.task.truncated(ready, bundle.tokenizer,
                                                            bundle.max_length),
                   split=split, dataset=str(dataset))
    return metrics


def predict(model_directory, texts, text_pairs=None, batch_size=EVAL_BATCH_SIZE,
            strategy="auto"):
    """Yields one dict per text (or pair), in order, batch by batch, so any number of texts
    streams through in bounded memory: the text (and `text_pair`) with the task's
    prediction (`label` and `probabilities`; `score`; `labels` and `probabilities`; or
    `entities` with character offsets into the text). Image models take image file paths
    and give each row's path as "image".

    Args:
        model_directory: a directory written by `finetune` (or `ensemble`).
        texts: an iterable of strings (image file paths for image models).
        text_pairs: for pair models, an iterable of second texts as long as `texts`.
        batch_size: texts per model call and replica.
        strategy: where to compute, as for `evaluate`.

    Raises:
        ValueError: pairs given to a single-text model, or none to a pair model.
    """
    strategy, bundle = _load(model_directory, strategy)
    task = bundle.task
    if task.pairs != (text_pairs is not None):
        raise ValueError(
            f"'{model_directory}' was trained on "
            f"{'text pairs' if task.pairs else 'single texts'}; give "
            f"{'two texts per example (--pair A B, or two tab-separated columns)' if task.pairs else 'one text per example'}.")
    batch_size *= strategy.num_replicas_in_sync
    rows = zip(texts, text_pairs) if task.pairs else ((text, None) for text in texts)
    while chunk := list(itertools.islice(rows, batch_size * PREDICT_CHUNK_BATCHES)):
        firsts = [first for first, _ in chunk]
        seconds = [second for _, second in chunk] if task.pairs else None
        examples = task.unlabeled(firsts, seconds)
        outputs = bundle.model.predict(_batches(bundle, examples, batch_size, strategy),
                                       verbose=0)
        for (first, second), row in zip(chunk, task.predicted_rows(outputs, examples,
                                                                    bundle.tokenizer)):
            yield {task.modality: first, **({"text_pair": second} if task.pairs else {}), **row}
