"""How much entailment the `minilm_l6` sentence embeddings hold on RTE, without fine-tuning.

Usage (from the repository root, after `make setup`):

    .venv/bin/python bench/rte_embedding_probe.py [--data DIR]

Embeds both sentences of every RTE pair with `BertSentenceEncoder` (mean pooling, L2
normalised), then (1) picks the cosine threshold that best separates entailment on the
training pairs and applies it to the validation pairs, and (2) trains a logistic layer on
the frozen SBERT features `[u, v, |u-v|, u*v, cos]` for 30 epochs, printing validation
accuracy every 5. Prints one JSON line; BENCHMARKS.md ("Sentence pairs") quotes it.
"""

import argparse
import json
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def embeddings(encoder, preprocessor, texts, batch_size=64):
    return np.concatenate([np.asarray(encoder(preprocessor(texts[i:i + batch_size])))
                           for i in range(0, len(texts), batch_size)])


def logistic_accuracies(train, validation, epochs=30, l2=1e-2):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((train[0].shape[1],)),
                              keras.layers.Dense(2, kernel_regularizer=keras.regularizers.L2(l2))])
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    accuracies = []
    for _ in range(epochs):
        model.fit(*train, batch_size=32, epochs=1, verbose=0)
        accuracies.append(round(float(model.evaluate(*validation, verbose=0)[1]), 4))
    return accuracies


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("KERAS_MAPPING_DATA_DIR",
                                                         str(ROOT.parent / "shared" / "data")))
    arguments = parser.parse_args()
    from keras_mapping.models import BertSentenceEncoder
    from keras_mapping.tasks.datasets import load_task_data
    from keras_mapping.tokenizers import BertTextPreprocessor

    _, splits = load_task_data(Path(arguments.data) / "rte")
    encoder = BertSentenceEncoder.from_preset("minilm_l6")
    preprocessor = BertTextPreprocessor.from_preset("minilm_l6", max_length=128,
                                                    pad_to_longest=True)
    features, cosines = {}, {}
    for split, examples in splits.items():
        first = embeddings(encoder, preprocessor, examples.texts)
        second = embeddings(encoder, preprocessor, examples.text_pairs)
        cosines[split] = (first * second).sum(axis=1)
        entailed = np.asarray(examples.labels) == 0  # labels sort: entailment first
        features[split] = (np.concatenate([first, second, np.abs(first - second),
                                           first * second, cosines[split][:, None]], axis=1),
                           np.asarray(examples.labels), entailed)
    train_entailed = features["train"][2]
    threshold = max(np.unique(cosines["train"]),
                    key=lambda t: ((cosines["train"] > t) == train_entailed).mean())
    validation_accuracy = ((cosines["validation"] > threshold)
                           == features["validation"][2]).mean()
    accuracies = logistic_accuracies(features["train"][:2], features["validation"][:2])
    print(json.dumps({"cosine_threshold": round(float(threshold), 4),
                      "cosine_validation_accuracy": round(float(validation_accuracy), 4),
                      "logistic_validation_accuracy_every_5_epochs": accuracies[4::5],
                      "logistic_best": max(accuracies)}))


if __name__ == "__main__":
    main()
