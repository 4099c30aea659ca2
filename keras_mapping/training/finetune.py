"""Fine-tuning a pretrained encoder for text classification, end to end.

`finetune(FinetuneConfig(...))` reads the data, builds the classifier from a preset, trains it
with `model.fit` and leaves a model directory (see `keras_mapping.checkpoints.model_dir`).
A run that is killed resumes from its last checkpoint (every `checkpoint_every` steps and at
each evaluation round) when started again with the same config and output directory.
"""

import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from keras_mapping.checkpoints import model_dir, resolve_preset
from keras_mapping.checkpoints.bert_layout import read_config
from keras_mapping.data import classification_dataset, load_splits
from keras_mapping.data.pipelines import truncated_count
from keras_mapping.data.readers import check_bad_bytes
from keras_mapping.models import BertBackbone, BertTextClassifier
from keras_mapping.checkpoints.task_weights import (TASK_WEIGHTS_FILE, base_fingerprint,
                                                    save_task_weights)
from keras_mapping.layers.peft import LORA_TARGETS
from keras_mapping.models.bert.classifier import POOLINGS
from keras_mapping.models.peft import (METHODS, merge_lora, peft_options, select_trainable,
                                       trainable_parameters)
from keras_mapping.tokenizers import BertTokenizer
from keras_mapping.training.callbacks import BestWeights, GradualUnfreezing, StopOnNonFiniteLoss
from keras_mapping.training.distribute import (FIT_STRATEGIES, as_distributable, create_strategy,
                                               needs_static_shapes)
from keras_mapping.training.optimizers import create_optimizer
from keras_mapping.training.precision import (PRECISION_POLICIES, PRECISIONS,
                                              resolve_precision, restores_global_settings)
from keras_mapping.training.resumable import resumable_fit, saved_step
from keras_mapping.training.run_state import RUN_STATE_DIR, Recipe, check_output_directory
from keras_mapping.training.scoring import target_log_probabilities

# Epochs and peak learning rate per method, where the recipe leaves them unset. The pieces
# parameter-efficient methods train start at or near zero and are few: they take larger
# steps and more of them (recipe search 4 and 5 in BENCHMARKS.md).
METHOD_RECIPES = {"full": {"epochs": 2.5, "learning_rate": 2e-4},
                  "adapter": {"epochs": 4.0, "learning_rate": 1e-3},
                  "lora": {"epochs": 4.0, "learning_rate": 2e-3},
                  "prefix": {"epochs": 4.0, "learning_rate": 1e-2},
                  "bitfit": {"epochs": 4.0, "learning_rate": 1e-2}}

@dataclass
class FinetuneConfig(Recipe):
    """The fine-tuning recipe.

    The defaults are sized for SST-2 with `minilm_l6` on a 2-core CPU within 10 minutes
    (see BENCHMARKS.md): two and a half epochs in batches of 128 at 2e-4 over a mean-pooled
    sentence vector, the embedding tables frozen, batches grouped by exact length so that
    nothing is padded, and the best of the validation rounds kept. They were chosen by a
    recipe search (bench/recipe_search_torch.py, results in BENCHMARKS.md). The
    parameter-efficient methods default to 4 epochs at larger learning rates
    (`METHOD_RECIPES`).

    Args:
        preset: preset name or BERT-layout directory to start from.
        dataset: "sst2", a folder with train/validation files, or a TFDS name.
        out: output model directory.
        text_column: text column of file datasets.
        label_column: label column of file datasets.
        data_dir: overrides `$KERAS_MAPPING_DATA_DIR` (and TFDS's data folder).
        on_bad_bytes: bytes that are not UTF-8 in data files: "error" stops, naming the file
            and line; "replace" reads them as U+FFFD.
        epochs: passes over the training data; fractions allowed (0.5 = half an epoch).
            None takes the method's default (`METHOD_RECIPES`: 2.5 for full fine-tuning,
            4 for the parameter-efficient methods).
        batch_size: examples per step and replica (the global batch is this times the
            number of replicas).
        learning_rate: peak learning rate; None takes the method's default
            (`METHOD_RECIPES`: 2e-4 for full fine-tuning, 1e-3 to 1e-2 for the others).
        max_length: longest packed sequence; batches pad only to their longest member.
        warmup_ratio: fraction of steps warming up linearly from 0.
        decay: "linear" or "cosine" decay after warmup.
        weight_decay: AdamW weight decay (not on LayerNorm and biases).
        layerwise_decay: learning-rate factor per layer downwards (e.g. 0.9), or None.
        freeze: number of lowest encoder layers to freeze.
        freeze_embeddings: freeze the embedding tables and their LayerNorm.
        gradual_unfreezing: start with only the top encoder block (and the head) training
            and unfreeze the next block down every this many validation rounds, down to
            `freeze` (0 turns it off).
        dropout: dropout rate in the backbone and before the output layer.
        pooling: sentence vector for the classifier: "mean" of the token outputs or BERT's
            "cls" pooler.
        method: what trains: "full" (every weight the freezing flags leave), or a
            parameter-efficient method that trains only small added pieces: "adapter"
            (bottleneck adapters), "lora" (low-rank updates of projections, merged into them
            when saved), "prefix" (learned attention prefixes) or "bitfit" (biases only);
            see `keras_mapping.models.peft`. The run also writes `task_weights.safetensors`
            with only the trained weights.
        lora_rank: rank of the LoRA updates.
        lora_alpha: LoRA scale numerator (updates are scaled by `lora_alpha / lora_rank`).
        lora_dropout: dropout on the LoRA updates' inputs.
        lora_targets: projections with LoRA updates, among query, key, value,
            attention_output (attention) and intermediate, output (feed-forward); all six
            by default.
        adapter_dim: bottleneck width of the adapters.
        prefix_length: learned key/value positions per layer for "prefix".
        seed: seed for weights of the head, dropout and data order.
        from_scratch: random initial weights instead of the preset's (same architecture).
        precision: "fp32", "bf16", "fp16" (mixed precision: float32 weights), or "auto":
            bf16 where the hardware computes it natively, else fp32.
        jit_compile: compile train and predict steps with XLA (batches are then padded to a
            few length buckets, since XLA compiles each shape anew).
        evaluations_per_epoch: validation rounds per epoch; each round is a Keras epoch,
            a checkpoint for resuming, and a candidate for the best weights.
        checkpoint_every: steps between checkpoints within a round, from which a killed run
            resumes (0: at round ends only). See `keras_mapping.training.resumable`.
        early_stopping_patience: stop after this many rounds without a better validation
            accuracy; None never stops early.
        max_train_examples: use only the first N training examples (quick runs).
        max_eval_examples: use only the first N validation examples.
        deterministic: make tf.data and TensorFlow ops deterministic (slower).
        strategy: where to compute: "auto", "default" (one device), "mirrored" (all local
            GPUs, or the logical CPU devices) or "tpu" (see
            `keras_mapping.training.distribute.create_strategy`; several workers train with
            `fit_multi_worker`, since Keras' `fit` cannot).
        tpu: the TPU's address for "tpu" (or "auto").
    """

    preset: str = "minilm_l6"
    dataset: str = "sst2"
    out: str = "saved_models/sst2_minilm_l6"
    text_column: str | None = None
    label_column: str | None = None
    data_dir: str | None = None
    on_bad_bytes: str = "error"
    epochs: float | None = None
    batch_size: int = 128
    learning_rate: float | None = None
    max_length: int = 64
    warmup_ratio: float = 0.1
    decay: str = "linear"
    weight_decay: float = 0.01
    layerwise_decay: float | None = None
    freeze: int = 0
    freeze_embeddings: bool = True
    gradual_unfreezing: int = 0
    dropout: float = 0.1
    pooling: str = "mean"
    method: str = "full"
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.1
    lora_targets: list = field(default_factory=lambda: list(LORA_TARGETS))
    adapter_dim: int = 32
    prefix_length: int = 16
    seed: int = 42
    from_scratch: bool = False
    precision: str = "auto"
    jit_compile: bool = False
    evaluations_per_epoch: int = 3
    checkpoint_every: int = 100
    early_stopping_patience: int | None = None
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    deterministic: bool = False
    strategy: str = "auto"
    tpu: str | None = None

    def __post_init__(self):
        if self.method not in METHOD_RECIPES:
            raise ValueError(f"`method` must be one of {METHODS}, got {self.method!r}.")
        for name, value in METHOD_RECIPES[self.method].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        checks = {
            "batch_size": self.batch_size >= 1,
            "epochs": self.epochs > 0,
            "learning_rate": self.learning_rate > 0,
            "max_length": self.max_length >= 3,
            "freeze": self.freeze >= 0,
            "gradual_unfreezing": self.gradual_unfreezing >= 0,
            "evaluations_per_epoch": self.evaluations_per_epoch >= 1,
            "checkpoint_every": self.checkpoint_every >= 0,
            "warmup_ratio": 0 <= self.warmup_ratio < 1,
            "dropout": 0 <= self.dropout < 1,
        }
        for name, valid in checks.items():
            if not valid:
                raise ValueError(f"Invalid `{name}`: {getattr(self, name)!r}.")
        check_bad_bytes(self.on_bad_bytes)
        if self.pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}, got {self.pooling!r}.")
        if self.precision not in PRECISIONS:
            raise ValueError(f"`precision` must be one of {PRECISIONS}, got "
                             f"{self.precision!r}.")
        self.peft_options()  # checks the method and its settings
        if self.strategy not in FIT_STRATEGIES:
            raise ValueError(f"`strategy` must be one of {FIT_STRATEGIES} for finetune, "
                             f"got {self.strategy!r}.")
        if self.jit_compile and self.deterministic:
            raise ValueError("`jit_compile` and `deterministic` do not combine: under "
                             "TensorFlow's op determinism Keras compiles without XLA.")
        if self.gradual_unfreezing and self.method != "full":
            raise ValueError(f"`gradual_unfreezing` unfreezes whole blocks, which "
                             f"`method={self.method!r}` keeps frozen; use it with "
                             "`method='full'`.")

    def peft_options(self):
        """The backbone's `peft` argument for this recipe's method."""
        return peft_options(self.method, lora_rank=self.lora_rank, lora_alpha=self.lora_alpha,
                            lora_dropout=self.lora_dropout, lora_targets=self.lora_targets,
                            adapter_dim=self.adapter_dim, prefix_length=self.prefix_length)



def build_classifier(config, num_classes):
    """The classifier of a recipe: the preset's backbone (pretrained unless
    `from_scratch`) with the recipe's dropout, method pieces and freezing, and a new head."""
    backbone = BertBackbone.from_preset(config.preset, load_weights=not config.from_scratch,
                                        dropout=config.dropout, peft=config.peft_options())
    backbone.freeze(embeddings=config.freeze_embeddings, num_layers=config.freeze)
    model = BertTextClassifier(backbone, num_classes=num_classes, dropout=config.dropout,
                               pooling=config.pooling)
    select_trainable(model, config.method)
    return model


def evaluation_metrics(logits, labels, num_classes):
    """Accuracy, macro F1, cross-entropy and the confusion matrix (rows: true labels)."""
    logits = np.asarray(logits, "float64")
    labels = np.asarray(labels)
    predictions = logits.argmax(axis=1)
    confusion = np.zeros((num_classes, num_classes), int)
    np.add.at(confusion, (labels, predictions), 1)
    f1_scores = []
    for label in range(num_classes):
        true_positive = confusion[label, label]
        denominator = confusion[label].sum() + confusion[:, label].sum()
        f1_scores.append(2 * true_positive / denominator if denominator else 0.0)
    return {
        "accuracy": float((predictions == labels).mean()),
        "f1": float(np.mean(f1_scores)),
        "loss": float(-target_log_probabilities(logits, labels).mean()),
        "num_examples": int(len(labels)),
        "confusion_matrix": confusion.tolist(),
    }


@restores_global_settings
def finetune(config, callbacks=(), verbose=1, print_fn=print):
    """Runs a recipe and writes its model directory to `config.out`.

    Args:
        config: a `FinetuneConfig`.
        callbacks: extra Keras callbacks.
        verbose: Keras progress output (0 silent, 1 progress bar, 2 one line per round).
        print_fn: where summary lines go.

    Returns:
        The validation metrics of the saved (best) weights, with timings.
    """
    started = time.time()
    # Before TensorFlow runs anything: some strategies configure the runtime.
    strategy = create_strategy(config.strategy, config.tpu)
    replicas = strategy.num_replicas_in_sync
    positions = read_config(resolve_preset(config.preset))["max_sequence_length"]
    if config.max_length > positions:
        raise ValueError(f"`max_length={config.max_length}` is above the {positions} positions "
                         f"of preset '{config.preset}'; use at most {positions}.")
    check_output_directory(config.out, config.to_dict(), model_dir.MODEL_FILE)
    # The data is read and checked before anything is written, so bad data leaves no run.
    splits = load_splits(config.dataset, text_column=config.text_column,
                         label_column=config.label_column, data_dir=config.data_dir,
                         on_bad_bytes=config.on_bad_bytes)
    train, validation = splits["train"], splits["validation"]
    if config.max_train_examples:
        train = train.head(config.max_train_examples)
    if config.max_eval_examples:
        validation = validation.head(config.max_eval_examples)
    if train.label_vocabulary.num_classes < 2:
        raise ValueError(f"{train.source}: the training data holds "
                         f"{train.label_vocabulary.num_classes} label "
                         f"({', '.join(map(repr, train.label_names))}); a classifier needs at "
                         "least 2.")
    out = Path(config.out)
    state = out / RUN_STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    model_dir.write_json_atomically(out / model_dir.TRAINING_CONFIG_FILE, config.to_dict())

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    precision = resolve_precision(config.precision)
    keras.config.set_dtype_policy(PRECISION_POLICIES[precision])

    num_classes = train.label_vocabulary.num_classes
    tokenizer = BertTokenizer.from_preset(config.preset)
    global_batch_size = config.batch_size * replicas
    with strategy.scope():
        model = build_classifier(config, num_classes)
    fingerprint = base_fingerprint(model.backbone)

    steps_per_epoch = math.ceil(len(train) / global_batch_size)
    total_steps = max(1, round(config.epochs * steps_per_epoch))
    rounds = max(1, round(config.epochs * config.evaluations_per_epoch))
    steps_per_round = math.ceil(total_steps / rounds)
    backbone = model.backbone
    unfreezing = []
    with strategy.scope():
        model.compile(
            optimizer=create_optimizer(
                config.learning_rate, total_steps, warmup_ratio=config.warmup_ratio,
                decay=config.decay, weight_decay=config.weight_decay,
                layerwise_decay=config.layerwise_decay, model=model,
                num_layers=backbone.num_layers),
            jit_compile=config.jit_compile,
        )
        if config.gradual_unfreezing:
            unfreezing = [GradualUnfreezing(backbone, config.gradual_unfreezing,
                                            min_frozen_layers=config.freeze,
                                            freeze_embeddings=config.freeze_embeddings)]
            unfreezing[0].build_optimizer(model)
    truncated = {split: truncated_count(examples, tokenizer, config.max_length)
                 for split, examples in (("train", train), ("validation", validation))}
    if any(truncated.values()):
        print_fn(f"finetune: {truncated['train']:,} training and {truncated['validation']:,} "
                 f"validation texts are longer than max_length={config.max_length} tokens "
                 "and are truncated")
    trainable, total = trainable_parameters(model), model.count_params()
    print_fn(f"finetune: {len(train):,} training / {len(validation):,} validation examples, "
             f"{num_classes} classes; method {config.method}: {trainable:,} of {total:,} "
             f"parameters train ({100 * trainable / total:.2f}%); {total_steps:,} steps in "
             f"{rounds} rounds of global batches of {global_batch_size} on {replicas} "
             f"replica(s); learning rate {config.learning_rate:g}; precision {precision}")

    checkpoints = state / "checkpoints"
    resumed_at = saved_step(checkpoints)
    # Without XLA, Keras traces a shape-generic step after the second shape, so batches can
    # be as long as their longest member; XLA (and so TPUs) compiles per shape, so shapes
    # are bucketed.
    static = needs_static_shapes(config.strategy, config.tpu, config.jit_compile)
    buckets = "auto" if static else None

    def train_batches(step):
        batches = classification_dataset(
            train, tokenizer, max_length=config.max_length, batch_size=global_batch_size,
            shuffle=True, seed=config.seed, group_by_length=True, repeat=True,
            buckets=buckets, deterministic=True if config.deterministic else None)
        return as_distributable(batches, strategy).skip(step)

    validation_data = classification_dataset(
        validation, tokenizer, max_length=config.max_length, batch_size=64 * replicas,
        buckets=buckets)
    validation_data = as_distributable(validation_data, strategy)
    if resumed_at:
        print_fn(f"finetune: resuming the killed run at step {resumed_at:,} of "
                 f"{rounds * steps_per_round:,}")
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    best = BestWeights(state / "best.weights.h5", monitor="val_accuracy")
    run_callbacks = unfreezing + [
        StopOnNonFiniteLoss(best),
        best,
        keras.callbacks.CSVLogger(str(logs / "training.csv"), append=True),
        keras.callbacks.TensorBoard(str(logs / "tensorboard"), write_graph=False),
    ]
    if config.early_stopping_patience is not None:
        run_callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_accuracy", mode="max", patience=config.early_stopping_patience))
    fit_started = time.time()
    resumable_fit(model, train_batches, rounds=rounds, steps_per_round=steps_per_round,
                  directory=checkpoints, checkpoint_every=config.checkpoint_every,
                  callbacks=run_callbacks + list(callbacks), validation_data=validation_data,
                  shuffle=False,  # the pipeline shuffles, seeded
                  verbose=verbose)
    train_seconds = time.time() - fit_started
    best.restore(model)

    logits = model.predict(validation_data, verbose=0)
    metrics = evaluation_metrics(logits, validation.labels, num_classes)
    metrics.update(
        train_seconds=round(train_seconds, 1),
        train_examples_per_second=round(
            max(rounds * steps_per_round - resumed_at, 0) * global_batch_size / max(train_seconds, 1e-9), 1),
        best_round=best.best_round,
        truncated_train_examples=truncated["train"],
        truncated_validation_examples=truncated["validation"],
        method=config.method,
        trainable_parameters=trainable,
        total_parameters=total,
    )
    save_task_weights(out / TASK_WEIGHTS_FILE, model, config.preset, fingerprint,
                      config.method, config.peft_options())
    metrics["task_weights_bytes"] = (out / TASK_WEIGHTS_FILE).stat().st_size
    # Merged LoRA costs nothing at inference; the task weights keep the updates apart.
    inference_model = merge_lora(model) if config.method == "lora" else model
    model_dir.save_classifier(out, inference_model, tokenizer, train.label_vocabulary,
                              config.to_dict(), metrics)
    shutil.rmtree(state, ignore_errors=True)
    metrics["wall_seconds"] = round(time.time() - started, 1)
    print_fn(f"finetune: validation accuracy {metrics['accuracy']:.4f} (best round "
             f"{best.best_round}); model directory {out}")
    return metrics
