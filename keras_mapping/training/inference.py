"""Evaluating and applying a fine-tuned model directory."""

import time

import numpy as np

from keras_mapping.checkpoints.model_dir import load_classifier
from keras_mapping.data import classification_dataset, from_lists, load_splits
from keras_mapping.data.pipelines import truncated_count
from keras_mapping.training.distribute import as_distributable, create_strategy
from keras_mapping.training.finetune import evaluation_metrics

EVAL_BATCH_SIZE = 64
WARMUP_BATCHES = 3


def evaluate(model_directory, dataset="sst2", split="validation", data_dir=None,
             max_examples=None, on_bad_bytes="error", strategy="auto"):
    """Accuracy, macro F1, loss, throughput and confusion matrix of a model directory on a
    dataset split (read with the model's own label vocabulary).

    Args:
        model_directory: a directory written by `finetune`.
        dataset: "sst2", a folder or a TFDS name, as in `load_splits`.
        split: the split to evaluate.
        data_dir: overrides `$KERAS_MAPPING_DATA_DIR`.
        max_examples: evaluate only the first N examples.
        on_bad_bytes: "error" or "replace", for undecodable bytes in data files.
        strategy: where to compute (`keras_mapping.training.distribute.create_strategy`);
            each replica takes batches of 64.
    """
    strategy = create_strategy(strategy)
    with strategy.scope():
        bundle = load_classifier(model_directory)
    config = bundle.training_config
    examples = load_splits(dataset, splits=(split,), text_column=config.get("text_column"),
                           label_column=config.get("label_column"), data_dir=data_dir,
                           label_vocabulary=bundle.labels, max_examples=max_examples,
                           on_bad_bytes=on_bad_bytes)[split]
    data = as_distributable(classification_dataset(
        examples, bundle.tokenizer, max_length=bundle.max_length,
        batch_size=EVAL_BATCH_SIZE * strategy.num_replicas_in_sync, buckets=None), strategy)
    # Keras traces a length-generic graph once it has seen two batch lengths; tracing it
    # here keeps compilation out of the measured throughput.
    bundle.model.predict(data.take(WARMUP_BATCHES), verbose=0)
    started = time.time()
    logits = bundle.model.predict(data, verbose=0)
    seconds = time.time() - started
    metrics = evaluation_metrics(logits, examples.labels, bundle.labels.num_classes)
    metrics.update(examples_per_second=round(len(examples) / max(seconds, 1e-9), 1),
                   truncated_examples=truncated_count(examples, bundle.tokenizer,
                                                      bundle.max_length),
                   label_names=list(bundle.labels.names), split=split, dataset=dataset)
    return metrics


def predict(model_directory, texts, batch_size=EVAL_BATCH_SIZE, strategy="auto"):
    """Yields `{"text", "label", "probabilities"}` per text, in order, batch by batch (so
    any number of texts streams through in bounded memory).

    Args:
        model_directory: a directory written by `finetune`.
        texts: an iterable of strings.
        batch_size: texts per model call and replica.
        strategy: where to compute, as for `evaluate`.
    """
    strategy = create_strategy(strategy)
    with strategy.scope():
        bundle = load_classifier(model_directory)
    batch_size *= strategy.num_replicas_in_sync
    names = list(bundle.labels.names)

    def run(batch):
        # Labels are unknown at prediction time; any valid one keeps the pipeline uniform.
        examples = from_lists(batch, [bundle.labels.labels[0]] * len(batch),
                              label_vocabulary=bundle.labels)
        data = as_distributable(classification_dataset(
            examples, bundle.tokenizer, max_length=bundle.max_length, batch_size=batch_size,
            cache=False, buckets=None), strategy)
        logits = np.asarray(bundle.model.predict(data, verbose=0), "float64")
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        for text, row in zip(batch, probabilities):
            yield {"text": text, "label": names[int(row.argmax())],
                   "probabilities": [round(float(p), 6) for p in row]}

    batch = []
    for text in texts:
        batch.append(text)
        if len(batch) == batch_size * 16:
            yield from run(batch)
            batch = []
    if batch:
        yield from run(batch)
