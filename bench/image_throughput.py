"""Image-model throughput (images/s, train and predict): ours beside same-shape reference models.

Usage (from the repository root, after `make setup`):

    KERAS_BACKEND=tensorflow .venv/bin/python bench/image_throughput.py \
        [--models resnet20,vit_cifar,resnet50] [--precision fp32|bf16] [--batch-size N] \
        [--steps 20] [--predict-steps 40] [--rounds 2] [--results-dir DIR]

Pairs (ours: `keras_mapping.models.ImageClassifier(backbone, 10)`, random weights):
- resnet20 (32x32, batch 128): ours `ResNetBackbone.from_architecture("resnet20",
  image_size=32)` against a functional model of KerasHub's own residual stacks
  (`keras_hub.src.models.resnet.resnet_backbone.apply_stack`, basic blocks, 16/32/64 filters,
  3 blocks each, strides 1/2/2, projection shortcut in the first block of stages 2 and 3 as
  ours) after a CIFAR stem (3x3 stride-1 convolution, BatchNorm, ReLU, no max-pool), then
  global average pooling and a float32 Dense. `keras_hub.models.ResNetBackbone` itself cannot
  take this shape: it requires 64 filters in the first stack and always has the ImageNet
  stem (7x7 stride-2 convolution and a max-pool).
- vit_cifar (32x32, batch 128): ours `ViTBackbone.from_architecture("vit_cifar")` against
  `keras_hub.models.ViTImageClassifier(keras_hub.models.ViTBackbone(image_shape=(32, 32, 3),
  patch_size=4, num_layers=6, num_heads=3, hidden_dim=192, mlp_dim=384), 10,
  preprocessor=None)`: a Dense on the class token after the final LayerNorm, as ours (its
  LayerNorm epsilon is 1e-6, ours 1e-12; the same weights and operations otherwise).
- resnet50 (224x224, batch 32): ours `ResNetBackbone.from_architecture("resnet50",
  image_size=224)` against `keras.applications.ResNet50(weights=None, input_shape=(224, 224,
  3), classes=10, classifier_activation=None)`. keras.applications' ResNet50 is v1: stride 2
  on the first 1x1 convolution of a downsampling bottleneck, and biases on its convolutions;
  ours follows the Hugging Face layout (v1.5: stride on the 3x3 convolution, no convolution
  biases, which are all the difference in parameters). FLOPs are nearly the same.
  The parameter counts of both models are printed before timing and stored in each row.

What is timed, the same for both models of a pair, in one process:
- `keras.config.set_dtype_policy` to `--precision` ("mixed_bfloat16" for bf16) before building
  either model; the default is `resolve_precision("auto")` (bf16 where this CPU computes it
  natively). Each model is compiled with AdamW (lr 1e-3, weight decay 0.004), sparse
  categorical cross-entropy from logits, no metrics, `jit_compile=False`.
- Data: 4 distinct batches of uniformly random float32 images in [0, 1) and random int32
  labels (10 classes), pre-batched in a repeated tf.data dataset without autotuning; no
  decoding or augmentation, so this measures the models only.
- Untimed warm-up: one `fit` of 2 steps and one `predict` of 2 batches per model (tracing,
  allocation). Then `--rounds` rounds, in each of which ours and the reference take turns
  (each going first in every other round): `fit(steps_per_epoch=--steps, epochs=1)` timed,
  then `predict(steps=--predict-steps)` timed (wall time of the call).
  images/s = batch x steps / the fastest round's seconds.
- ratio columns: ours' images/s divided by the reference's (above 1: ours is faster).

Rows go to the "image_throughput" table of BENCHMARKS.md (one per model and precision).
`--results-dir` stores rows elsewhere and renders the table into RESULTS_DIR/BENCHMARKS.md
instead of the real one (smoke runs).
"""

import argparse
import os
import sys
import time

import results_table
from glue_pairs import redirect_results
from results_table import cpu_class, cpu_description, record_result

MODELS = {"resnet20": 32, "vit_cifar": 32, "resnet50": 224}  # image size of each pair
NUM_CLASSES = 10
WARMUP_STEPS = 2
DISTINCT_BATCHES = 4
COLUMNS = ("model", "reference", "precision", "image_size", "batch", "train_ours",
           "train_reference", "train_ratio", "predict_ours", "predict_reference",
           "predict_ratio", "parameters_ours", "parameters_reference", "cpu", "measured_at")


def ours(name):
    from keras_mapping.models import ImageClassifier, ResNetBackbone, ViTBackbone

    if name == "vit_cifar":
        return ImageClassifier(ViTBackbone.from_architecture("vit_cifar"), NUM_CLASSES)
    backbone = ResNetBackbone.from_architecture(name, image_size=MODELS[name])
    return ImageClassifier(backbone, NUM_CLASSES)


def kerashub_resnet20():
    """ResNet-20 (CIFAR) from KerasHub's residual stacks; see the module docstring."""
    import keras
    from keras import layers
    from keras_hub.src.models.resnet.resnet_backbone import apply_stack

    images = keras.Input((32, 32, 3))
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv1_conv")(images)
    x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    for index, (filters, stride) in enumerate(((16, 1), (32, 2), (64, 2))):
        x = apply_stack(x, filters, blocks=3, stride=stride, block_type="basic_block",
                        use_pre_activation=False, first_shortcut=index > 0,
                        name=f"stack{index}")
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(images, layers.Dense(NUM_CLASSES, dtype="float32")(x))


def reference(name):
    """(model, description) of the reference for one of MODELS."""
    import keras
    import keras_hub

    if name == "resnet20":
        return kerashub_resnet20(), "KerasHub apply_stack, CIFAR stem"
    if name == "vit_cifar":
        backbone = keras_hub.models.ViTBackbone(
            image_shape=(32, 32, 3), patch_size=4, num_layers=6, num_heads=3, hidden_dim=192,
            mlp_dim=384)
        model = keras_hub.models.ViTImageClassifier(backbone, NUM_CLASSES, preprocessor=None)
        return model, "keras_hub.models.ViTImageClassifier"
    model = keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3),
                                        classes=NUM_CLASSES, classifier_activation=None)
    return model, "keras.applications.ResNet50 (v1)"


def datasets(image_size, batch):
    """Repeated (images, labels) and images-only datasets of pre-made batches."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = rng.random((DISTINCT_BATCHES, batch, image_size, image_size, 3), "float32")
    labels = rng.integers(0, NUM_CLASSES, (DISTINCT_BATCHES, batch)).astype("int32")
    options = tf.data.Options()
    options.autotune.enabled = False  # see bench/throughput.py: it delays the end of fit
    train = tf.data.Dataset.from_tensor_slices((images, labels)).repeat()
    predict = tf.data.Dataset.from_tensor_slices(images).repeat()
    return train.with_options(options), predict.with_options(options)


def prepared(model, train, predict):
    """Compiles `model` and runs the untimed warm-up; returns (fit, predict) callables of a
    number of steps that return their wall seconds."""
    import keras

    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.004),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[], jit_compile=False)

    def timed(call):
        def run(steps):
            started = time.perf_counter()
            call(steps)
            return time.perf_counter() - started
        return run

    fit = timed(lambda steps: model.fit(train, steps_per_epoch=steps, epochs=1, verbose=0,
                                        shuffle=False))
    infer = timed(lambda steps: model.predict(predict, steps=steps, verbose=0))
    fit(WARMUP_STEPS)
    infer(WARMUP_STEPS)
    return fit, infer


def measure(name, batch, arguments):
    """Best seconds of train and predict, and parameters, of ours and the reference."""
    import keras

    train, predict = datasets(MODELS[name], batch)
    keras.utils.set_random_seed(0)
    models = {"ours": ours(name)}
    models["reference"], description = reference(name)
    counts = {key: model.count_params() for key, model in models.items()}
    print(f"{name}: parameters ours {counts['ours']:,}, {description} "
          f"{counts['reference']:,} ({counts['reference'] - counts['ours']:+,})", flush=True)
    runs = {key: prepared(model, train, predict) for key, model in models.items()}
    best = {}
    for round_index in range(arguments.rounds):
        # ours and the reference take turns, each going first in every other round
        for key, (fit, infer) in list(runs.items())[::1 if round_index % 2 == 0 else -1]:
            for mode, run, steps in (("train", fit, arguments.steps),
                                     ("predict", infer, arguments.predict_steps)):
                seconds = run(steps)
                best[mode, key] = min(best.get((mode, key), float("inf")), seconds)
                print(f"{name} {key} {mode}: {batch * steps / seconds:.1f} images/s",
                      flush=True)
    row = {"model": name, "reference": description, "image_size": MODELS[name],
           "batch": batch, "steps": arguments.steps, "predict_steps": arguments.predict_steps,
           "rounds": arguments.rounds}
    for mode, steps in (("train", arguments.steps), ("predict", arguments.predict_steps)):
        for key in models:
            row[f"{mode}_{key}"] = round(batch * steps / best[mode, key], 1)
        row[f"{mode}_ratio"] = round(row[f"{mode}_ours"] / row[f"{mode}_reference"], 2)
    return {**row, **{f"parameters_{key}": count for key, count in counts.items()}}


def parse_arguments():
    from keras_mapping.training.precision import resolve_precision

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS),
                        help="Comma-separated subset of %(default)s.")
    parser.add_argument("--precision", choices=("fp32", "bf16"),
                        default=resolve_precision("auto"),
                        help="Dtype policy of both models (default on this machine: "
                             "%(default)s, from resolve_precision('auto')).")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="Batch size (default: 128 for 32x32 models, 32 for 224x224).")
    parser.add_argument("--steps", type=int, default=20, help="Timed fit steps per round.")
    parser.add_argument("--predict-steps", type=int, default=40,
                        help="Timed predict batches per round.")
    parser.add_argument("--rounds", type=int, default=2,
                        help="Timed turns of each model; the fastest counts.")
    parser.add_argument("--results-dir", default=str(results_table.RESULTS),
                        help="Where rows go; elsewhere than bench/results, the table is "
                             "rendered into RESULTS_DIR/BENCHMARKS.md (default: %(default)s).")
    arguments = parser.parse_args()
    unknown = set(arguments.models.split(",")) - set(MODELS)
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}; known: {', '.join(MODELS)}")
    return arguments


def main():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    arguments = parse_arguments()
    redirect_results(arguments.results_dir)
    import keras

    from keras_mapping.training.precision import PRECISION_POLICIES

    keras.config.set_dtype_policy(PRECISION_POLICIES[arguments.precision])
    cpu = cpu_description()
    command = "python bench/image_throughput.py " + " ".join(sys.argv[1:])
    for name in arguments.models.split(","):
        batch = arguments.batch_size or (128 if MODELS[name] == 32 else 32)
        row = {**measure(name, batch, arguments), "precision": arguments.precision,
               "cpu": cpu, "command": command}
        # one row per CPU class, model and precision: a class's rows do not replace another's
        record_result("image_throughput", f"{cpu_class()}_{name}_{arguments.precision}", row,
                      COLUMNS)


if __name__ == "__main__":
    main()
