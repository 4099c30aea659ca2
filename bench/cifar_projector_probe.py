"""Probe (issue 18): does an MLP projector between ResNet-20 and its classifier, during
supervised training on the CIFAR-10 source task, make the backbone transfer better?

Wang et al. (CVPR 2022, "Revisiting the Transferability of Supervised Pretraining: an MLP
Projector is All You Need") report that a projector kept only for pretraining (dense, batch
norm, ReLU, dense, then the classifier; dropped afterwards) keeps the backbone's features less
specialised to the source classes, which helps most when source and target share no class, as
here.

Usage (from the repository root, after `make setup`; the splits of bench/cifar_transfer.py):

    KERAS_BACKEND=tensorflow .venv/bin/python bench/cifar_projector_probe.py \
        [--work /tmp/cifar_bench] [--heads linear,projector] [--epochs 10]

For each head, the source task is trained in this process with the recipe `finetune` gives it
(AdamW at 1e-3, 10% warmup then linear decay, weight decay 0.01 off BatchNorm, gradients
clipped to norm 1, dropout 0.1 before the classifier, batch 128, seed 42, the crop-and-flip
augmentation, bf16 where the CPU computes it), without choosing a best round: the last
weights count for both heads. The backbone alone is written as a Hugging Face `ResNetModel`
directory with the task's preprocessing, and the target rows run from it with the CLI as in
bench/cifar_transfer.py (`finetune --preset DIR --dataset WORK/target --method full` and
`--method linear-probe`, then `evaluate --split test`). The `linear` head is the control: the
same loop with the usual classifier, so the two differ only in the projector.
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path

from cifar_folders import build, default_tar
from cifar_transfer import finetune_and_test
from results_table import cpu_description, record_result

PROJECTOR_WIDTH = 256  # hidden and output width (the backbone's features are 64 wide)
SEED = 42
COLUMNS = ("part", "head", "source_epochs", "source_test_accuracy", "source_cpu_seconds",
           "target_method", "target_validation_accuracy", "target_test_accuracy",
           "target_cpu_seconds", "measured_at")


def source_model(backbone, num_classes, head):
    """The source classifier: the backbone's pooled features, then dropout and the
    classifier (`linear`), or the projector first (`projector`)."""
    import keras

    features = backbone(backbone.input)["pooled_output"]
    if head == "projector":
        features = keras.layers.Dense(PROJECTOR_WIDTH, use_bias=False)(features)
        features = keras.layers.BatchNormalization()(features)
        features = keras.layers.ReLU()(features)
        features = keras.layers.Dense(PROJECTOR_WIDTH)(features)
    features = keras.layers.Dropout(0.1)(features)
    logits = keras.layers.Dense(num_classes, dtype="float32")(features)
    return keras.Model(backbone.input, logits)


def train_source(work, head, epochs):
    """Trains the source task with `head`; returns (backbone directory, test accuracy,
    CPU seconds)."""
    import keras

    from keras_mapping.checkpoints import vision_layout
    from keras_mapping.models import ResNetBackbone
    from keras_mapping.tasks.image_classification import ImageClassificationTask
    from keras_mapping.training.optimizers import create_optimizer
    from keras_mapping.training.precision import PRECISION_POLICIES, resolve_precision

    started = resource.getrusage(resource.RUSAGE_SELF)
    keras.config.set_dtype_policy(PRECISION_POLICIES[resolve_precision("auto")])
    keras.utils.set_random_seed(SEED)
    task, train = ImageClassificationTask.from_training_folder(work / "source", "resnet20")
    test = task.examples(work / "source", "validation")  # the source's 5,000 test images
    batches = task.dataset(train, batch_size=128, shuffle=True, seed=SEED)
    steps = epochs * int(batches.cardinality())
    backbone = ResNetBackbone.from_architecture("resnet20", image_size=task.image_size)
    model = source_model(backbone, len(task.class_names), head)
    model.compile(optimizer=create_optimizer(1e-3, steps, weight_decay=0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(batches, epochs=epochs, verbose=2)
    _, accuracy = model.evaluate(task.dataset(test, batch_size=256), verbose=0)
    out = work / "runs" / f"resnet20_source_{head}_{epochs}ep"
    vision_layout.save(out, "resnet", backbone, preprocessing=task.preprocessor_config(),
                       overwrite=True)
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (used.ru_utime - started.ru_utime) + (used.ru_stime - started.ru_stime)
    return out, accuracy, cpu


def main():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/cifar_bench")
    parser.add_argument("--tar", default=None)
    parser.add_argument("--heads", default="linear,projector")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    work = Path(build(args.work, args.tar or default_tar()))
    for head in args.heads.split(","):
        directory, source_accuracy, source_cpu = train_source(work, head, args.epochs)
        for method in ("full", "linear-probe"):
            part = f"resnet20_{head}_{args.epochs}ep_{method}"
            target = finetune_and_test(directory, method, work / "runs" / f"{part}_target",
                                       work)
            row = {"part": part, "head": head, "source_epochs": args.epochs,
                   "source_test_accuracy": round(source_accuracy, 4),
                   "source_cpu_seconds": round(source_cpu, 1), "target_method": method,
                   **target, "cpu": cpu_description(),
                   "command": "python bench/cifar_projector_probe.py " + " ".join(sys.argv[1:]),
                   "measured_at": time.strftime("%Y-%m-%d %H:%M")}
            record_result("cifar_projector_probe", part, row, COLUMNS, percent_columns=(
                "source_test_accuracy", "target_validation_accuracy", "target_test_accuracy"))


if __name__ == "__main__":
    main()
