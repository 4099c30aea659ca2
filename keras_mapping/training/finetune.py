"""Fine-tuning a pretrained encoder for any text task, end to end.

`finetune(FinetuneConfig(...))` reads the data into a task (classification of a text or a
text pair, regression, multi-label; `keras_mapping.tasks`), builds the task's head on a
preset's backbone, trains it through the run engine (`keras_mapping.training.engine`) and
leaves a model directory (`keras_mapping.tasks.model_directory`). A run that is killed
resumes from its last checkpoint (every `checkpoint_every` steps and at each evaluation
round) when started again with the same config and output directory.
"""

import time
from dataclasses import dataclass, field, replace

import keras

from keras_mapping.checkpoints import model_dir, resolve_preset
from keras_mapping.checkpoints.bert_layout import read_config
from keras_mapping.checkpoints.task_weights import (TASK_WEIGHTS_FILE, base_fingerprint,
                                                    save_task_weights)
from keras_mapping.layers.peft import LORA_TARGETS
from keras_mapping.models import BertBackbone
from keras_mapping.models.bert.classifier import POOLINGS
from keras_mapping.models.image_classifier import IMAGE_ARCHITECTURES, image_backbone
from keras_mapping.models.peft import (METHODS, merge_lora, peft_options, select_trainable,
                                       trainable_parameters)
from keras_mapping.tasks.datasets import DataOptions, load_task_data
from keras_mapping.tasks.model_directory import save_model_directory
from keras_mapping.tokenizers import BertTokenizer
from keras_mapping.training.callbacks import (BestWeights, GradualUnfreezing,
                                              StopOnNonFiniteLoss, TaskValidation)
from keras_mapping.training.distribute import (STRATEGIES, as_distributable, create_strategy,
                                               needs_static_shapes, predict_on_this_worker)
from keras_mapping.training.engine import (Rounds, close_run, last_logged, open_run,
                                           train_rounds)
from keras_mapping.training.optimizers import create_optimizer
from keras_mapping.training.precision import PRECISIONS, restores_global_settings
from keras_mapping.training.run_state import Recipe

# Epochs and peak learning rate per method, where the recipe leaves them unset. The pieces
# parameter-efficient methods train start at or near zero and are few: they take larger
# steps and more of them (recipe search 4 and 5 in BENCHMARKS.md).
METHOD_RECIPES = {"full": {"epochs": 2.5, "learning_rate": 2e-4},
                  "adapter": {"epochs": 4.0, "learning_rate": 1e-3},
                  "lora": {"epochs": 4.0, "learning_rate": 2e-3},
                  "prefix": {"epochs": 4.0, "learning_rate": 1e-2},
                  "bitfit": {"epochs": 4.0, "learning_rate": 1e-2},
                  "linear-probe": {"epochs": 4.0, "learning_rate": 1e-2}}
# Below this many training examples, batches of 128 give too few steps (RTE's 2,490 pairs:
# 49 steps in 2.5 epochs), so full fine-tuning takes smaller batches and more epochs
# (BENCHMARKS.md, "Sentence pairs").
SMALL_DATA_EXAMPLES = 20_000
SMALL_DATA_RECIPE = {"batch_size": 16, "epochs": 4.0, "learning_rate": 5e-5}
VALIDATION_BATCH_SIZE = 64

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
        preset: preset name or BERT-layout directory to start from, or a text model
            directory written by `finetune` (its fine-tuned encoder under a new head: a
            second task after an intermediate one, e.g. RTE after STS-B); for image tasks, an
            image architecture ("resnet8", "resnet20", "resnet56", "resnet18", "resnet50",
            "vit_tiny", "vit_small", "vit_base", "vit_cifar": random weights), a Hugging
            Face-layout ViT or ResNet directory, or an image model directory written by
            `finetune` or `pretrain --images` (pretrained).
        dataset: "sst2", "conll2003", a folder with train/validation files (tables or token
            files) or folders (images: train/<class>/*.jpg|png), or a TFDS name.
        out: output model directory.
        task: "classification", "regression", "multi-label", "token-classification" or
            "image-classification"; None detects it from the files (image folders; token
            files: CoNLL columns or JSONL tokens) and the training labels (see
            `keras_mapping.data.layout`).
        text_column: text column of file datasets (None: detected).
        text_pair_column: second text column, for sentence pairs (None: detected from
            known names such as sentence1/sentence2).
        label_column: label column of file datasets (None: detected).
        label_columns: the 0/1 columns of a multi-label task, one per label.
        label_delimiter: separates several labels in one column (multi-label).
        threshold: probability above which a multi-label label is predicted.
        tune_threshold: choose each label's threshold on the validation split after
            training (multi-label), stored with the model.
        tag_column: the tag column of CoNLL token files (negative counts from the end).
        tag_scheme: how token files write tags: "iob1", "iob2" ("bio") or "iobes"
            ("bioes"); read into IOB2.
        strict_tags: refuse an `I-X` tag that continues no `X` entity (default: it starts
            one, as conlleval reads it).
        label_all_pieces: train a word's tag on all its word pieces, not only the first.
        stride: pieces between the starts of the windows cut over sentences longer than
            `max_length` (None: half a window).
        data_dir: overrides `$KERAS_MAPPING_DATA_DIR` (and TFDS's data folder).
        on_bad_bytes: bytes that are not UTF-8 in data files: "error" stops, naming the file
            and line; "replace" reads them as U+FFFD.
        image_size: images are resized to this many pixels square (image tasks); None: the
            preset's size (a ViT directory's is fixed), else the training images' most
            common size.
        skip_bad_images: leave unreadable images (empty, truncated, not JPEG or PNG) out and
            count them in the output, instead of stopping with their names.
        epochs: passes over the training data; fractions allowed (0.5 = half an epoch).
            None takes the method's default (`METHOD_RECIPES`: 2.5 for full fine-tuning,
            4 for the parameter-efficient methods; `SMALL_DATA_RECIPE` on small data;
            images: 10 to 100 by the data's size, `ImageClassificationTask.recipe_defaults`).
        batch_size: examples per step and replica (the global batch is this times the
            number of replicas); None: 128, or `SMALL_DATA_RECIPE`'s on small data (images:
            32 below 5,000 images).
        learning_rate: peak learning rate; None takes the method's default
            (`METHOD_RECIPES`: 2e-4 for full fine-tuning, 1e-3 to 1e-2 for the others;
            images, full training: 1e-3 from random weights, 5e-4 from trained ones).
        max_length: longest packed sequence; batches pad only to their longest member.
            None: the task's (64 for one text, 128 for text pairs and tagged sentences).
        warmup_ratio: fraction of steps warming up linearly from 0.
        decay: "linear" or "cosine" decay after warmup.
        weight_decay: AdamW weight decay (not on LayerNorm and biases).
        layerwise_decay: learning-rate factor per layer downwards (e.g. 0.9), or None.
        freeze: number of lowest encoder layers to freeze.
        freeze_embeddings: freeze the embedding tables and their LayerNorm (image
            backbones: the input stem, and only when it holds pretrained weights).
        gradual_unfreezing: start with only the top encoder block (and the head) training
            and unfreeze the next block down every this many validation rounds, down to
            `freeze` (0 turns it off).
        dropout: dropout rate in the backbone and before the output layer.
        pooling: sentence vector for the classifier: "mean" of the token outputs or BERT's
            "cls" pooler.
        method: what trains: "full" (every weight the freezing flags leave), or a
            parameter-efficient method that trains only small added pieces: "adapter"
            (bottleneck adapters), "lora" (low-rank updates of projections, merged into them
            when saved), "prefix" (learned attention prefixes), "bitfit" (biases only) or
            "linear-probe" (the task head only, the backbone frozen whole, BatchNorm
            statistics included); see `keras_mapping.models.peft`. The run also writes `task_weights.safetensors`
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
            score (the task's: accuracy, Spearman, micro F1); None never stops early.
        max_train_examples: use only the first N training examples (quick runs).
        max_eval_examples: use only the first N validation examples.
        deterministic: make tf.data and TensorFlow ops deterministic (slower).
        strategy: where to compute: "auto", "default" (one device), "mirrored" (all local
            GPUs, or the logical CPU devices), "multi-worker" (the workers `TF_CONFIG`
            lists; every worker runs the same command) or "tpu" (see
            `keras_mapping.training.distribute.create_strategy`); `batch_size` is per
            replica.
        tpu: the TPU's address for "tpu" (or "auto").
    """

    preset: str = "minilm_l6"
    dataset: str = "sst2"
    out: str = "saved_models/sst2_minilm_l6"
    task: str | None = None
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str | None = None
    label_columns: list | None = field(default=None, metadata={"nargs": "+"})
    label_delimiter: str = ","
    threshold: float = 0.5
    tune_threshold: bool = False
    tag_column: int = -1
    tag_scheme: str = "iob2"
    strict_tags: bool = False
    label_all_pieces: bool = False
    stride: int | None = None
    data_dir: str | None = None
    on_bad_bytes: str = "error"
    image_size: int | None = None
    skip_bad_images: bool = False
    epochs: float | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    max_length: int | None = None
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
        if self.label_columns is not None:
            self.label_columns = list(self.label_columns)
        checks = {
            "batch_size": self.batch_size is None or self.batch_size >= 1,
            "epochs": self.epochs is None or self.epochs > 0,
            "learning_rate": self.learning_rate is None or self.learning_rate > 0,
            "max_length": self.max_length is None or self.max_length >= 3,
            "freeze": self.freeze >= 0,
            "gradual_unfreezing": self.gradual_unfreezing >= 0,
            "evaluations_per_epoch": self.evaluations_per_epoch >= 1,
            "checkpoint_every": self.checkpoint_every >= 0,
            "warmup_ratio": 0 <= self.warmup_ratio < 1,
            "dropout": 0 <= self.dropout < 1,
            "threshold": 0 < self.threshold < 1,
            "image_size": self.image_size is None or self.image_size >= 1,
        }
        self.refuse_invalid(checks)
        self.data_options()  # checks the task and column settings
        if self.pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}, got {self.pooling!r}.")
        if self.precision not in PRECISIONS:
            raise ValueError(f"`precision` must be one of {PRECISIONS}, got "
                             f"{self.precision!r}.")
        self.peft_options()  # checks the method and its settings
        if self.strategy not in STRATEGIES:
            raise ValueError(f"`strategy` must be one of {STRATEGIES} for finetune, "
                             f"got {self.strategy!r}.")
        if self.jit_compile and self.deterministic:
            raise ValueError("`jit_compile` and `deterministic` do not combine: under "
                             "TensorFlow's op determinism Keras compiles without XLA.")
        if self.gradual_unfreezing and self.method != "full":
            raise ValueError(f"`gradual_unfreezing` unfreezes whole blocks, which "
                             f"`method={self.method!r}` keeps frozen; use it with "
                             "`method='full'`.")

    def data_options(self):
        """How the dataset is read into a task (`keras_mapping.tasks.DataOptions`)."""
        return DataOptions(task=self.task, text_column=self.text_column,
                           text_pair_column=self.text_pair_column,
                           label_column=self.label_column,
                           label_columns=tuple(self.label_columns or ()) or None,
                           label_delimiter=self.label_delimiter, threshold=self.threshold,
                           data_dir=self.data_dir, on_bad_bytes=self.on_bad_bytes,
                           tag_column=self.tag_column, tag_scheme=self.tag_scheme,
                           strict_tags=self.strict_tags,
                           label_all_pieces=self.label_all_pieces, stride=self.stride,
                           skip_bad_images=self.skip_bad_images, image_size=self.image_size,
                           image_preset=self.preset)

    def resolved(self, task, train_examples, positions):
        """This recipe with the fields left None filled from the data: the method's epochs
        and learning rate (`SMALL_DATA_RECIPE` when the training split holds fewer than
        `SMALL_DATA_EXAMPLES`), then what the task's `recipe_defaults` changes (image
        tasks have their own), and the task's `default_max_length` (at most the preset's
        `positions`; None for image tasks, which have neither)."""
        small = train_examples < SMALL_DATA_EXAMPLES and self.method == "full"
        defaults = {**METHOD_RECIPES[self.method], "batch_size": 128,
                    **(SMALL_DATA_RECIPE if small else {}),
                    **task.recipe_defaults(train_examples, self.method, self.pretrained),
                    "max_length": None if positions is None
                    else min(positions, task.default_max_length)}
        filled = {name: value for name, value in defaults.items()
                  if getattr(self, name) is None}
        if self.tune_threshold and task.name != "multi-label":
            raise ValueError(f"`tune_threshold` chooses multi-label thresholds; this is a "
                             f"{task.name} task.")
        return replace(self, **filled)

    @property
    def pretrained(self):
        """Whether the backbone starts from trained weights (not an image architecture's
        random ones, not `from_scratch`)."""
        return not self.from_scratch and self.preset not in IMAGE_ARCHITECTURES

    def peft_options(self):
        """The backbone's `peft` argument for this recipe's method."""
        return peft_options(self.method, lora_rank=self.lora_rank, lora_alpha=self.lora_alpha,
                            lora_dropout=self.lora_dropout, lora_targets=self.lora_targets,
                            adapter_dim=self.adapter_dim, prefix_length=self.prefix_length)


def _backbone(config, task):
    """`(backbone, whether its embeddings freeze)` of a recipe's preset for `task`."""
    if task.modality != "image":
        return BertBackbone.from_preset(
            config.preset, load_weights=not config.from_scratch, dropout=config.dropout,
            peft=config.peft_options()), config.freeze_embeddings
    pretrained = config.pretrained
    backbone = image_backbone(config.preset, task.image_size, load_weights=pretrained,
                              dropout=config.dropout, peft=config.peft_options())
    # A random stem that never trains would only cap what the blocks above can learn.
    return backbone, config.freeze_embeddings and pretrained


def build_task_model(config, task):
    """The task's model for a recipe: the preset's backbone (pretrained unless
    `from_scratch`) with the recipe's dropout, method pieces and freezing, and the task's
    new head."""
    backbone, freeze_embeddings = _backbone(config, task)
    backbone.freeze(embeddings=freeze_embeddings, num_layers=config.freeze)
    model = task.build_model(backbone, dropout=config.dropout, pooling=config.pooling)
    select_trainable(model, config.method)
    return model


def compile_task_model(model, config, rounds):
    """Compiles with the recipe's optimizer (the task's own loss and metrics); returns the
    gradual-unfreezing callback, if any, which needs the optimizer built."""
    backbone = model.backbone
    model.compile(optimizer=create_optimizer(
        config.learning_rate, rounds.steps, warmup_ratio=config.warmup_ratio,
        decay=config.decay, weight_decay=config.weight_decay,
        layerwise_decay=config.layerwise_decay, model=model,
        num_layers=backbone.num_layers), jit_compile=config.jit_compile)
    if not config.gradual_unfreezing:
        return []
    unfreezing = GradualUnfreezing(backbone, config.gradual_unfreezing,
                                   min_frozen_layers=config.freeze,
                                   freeze_embeddings=config.freeze_embeddings)
    unfreezing.build_optimizer(model)
    return [unfreezing]


def read_finetune_data(config):
    """`(task, train, validation, size of the whole training split)` of a recipe's
    dataset, cut to the example limits."""
    task, splits = load_task_data(config.dataset, config.data_options())
    train, validation = splits["train"], splits["validation"]
    size = len(train)
    if config.max_train_examples:
        train = train.head(config.max_train_examples)
    if config.max_eval_examples:
        validation = validation.head(config.max_eval_examples)
    return task, train, validation, size


def preset_positions(preset, task=None):
    """The longest sequence a preset's position table holds (None for image tasks)."""
    if task is not None and task.modality == "image":
        return None
    return read_config(resolve_preset(preset))["max_sequence_length"]


def preset_tokenizer(preset, task):
    """The preset's tokenizer, or None for image tasks."""
    return None if task.modality == "image" else BertTokenizer.from_preset(preset)


def check_positions(config, positions):
    if positions is not None and config.max_length > positions:
        raise ValueError(f"`max_length={config.max_length}` is above the {positions} positions "
                         f"of preset '{config.preset}'; use at most {positions}.")


def _print_plan(print_fn, config, task, model, train, validation, rounds, global_batch,
                replicas, precision):
    trainable, total = trainable_parameters(model), model.count_params()
    print_fn(f"finetune: {task.describe()}; {len(train):,} "
             f"training / {len(validation):,} validation examples; method {config.method}: "
             f"{trainable:,} of {total:,} parameters train ({100 * trainable / total:.2f}%); "
             f"{rounds.steps:,} steps in {rounds.rounds} rounds of global batches of "
             f"{global_batch} on {replicas} replica(s); learning rate {config.learning_rate:g}; max_length "
             f"{config.max_length}; precision {precision}")
    return trainable, total


def _truncation(print_fn, config, task, tokenizer, train, validation):
    truncated = {split: task.truncated(examples, tokenizer, config.max_length)
                 for split, examples in (("train", train), ("validation", validation))}
    if any(truncated.values()):
        print_fn(f"finetune: {truncated['train']:,} training and {truncated['validation']:,} "
                 f"validation texts are longer than max_length={config.max_length} tokens "
                 "and are truncated")
    return truncated


def _skipped_images(print_fn, train, validation):
    """`{"skipped_train_images": n, ...}` of image splits read with `skip_bad_images`
    (empty for other data), printed when any was skipped."""
    skipped = {f"skipped_{split}_images": len(examples.skipped)
               for split, examples in (("train", train), ("validation", validation))
               if hasattr(examples, "skipped")}
    if any(skipped.values()):
        print_fn(f"finetune: left out {skipped['skipped_train_images']:,} training and "
                 f"{skipped['skipped_validation_images']:,} validation images that do not "
                 "decode (--skip-bad-images)")
    return skipped


def _batches(config, run, task, tokenizer, train, validation):
    """`train_batches(step)` and the validation batches of a run."""
    buckets = ("auto" if needs_static_shapes(config.strategy, config.tpu, config.jit_compile)
               else None)

    def train_batches(step):
        batches = task.dataset(
            train, tokenizer, max_length=config.max_length,
            batch_size=config.batch_size * run.replicas, shuffle=True, seed=config.seed,
            group_by_length=True, repeat=True, buckets=buckets,
            deterministic=True if config.deterministic else None)
        return as_distributable(batches, run.strategy).skip(step)

    validation_data = task.dataset(validation, tokenizer, max_length=config.max_length,
                                   batch_size=VALIDATION_BATCH_SIZE * run.replicas,
                                   buckets=buckets)
    if task.keeps_validation_batches:  # read every round: batched once
        validation_data = validation_data.cache()
    return train_batches, as_distributable(validation_data, run.strategy)


def _round_callbacks(config, run, task, validation_data, validation):
    best = BestWeights(run.state / "best.weights.h5", monitor=f"val_{task.monitor}")
    callbacks = [StopOnNonFiniteLoss(best), TaskValidation(task, validation_data, validation),
                 best]
    if config.early_stopping_patience is not None:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=f"val_{task.monitor}", mode="max",
            patience=config.early_stopping_patience))
    return best, callbacks


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
    task, train, validation, train_size = read_finetune_data(config)
    positions = preset_positions(config.preset, task)
    # Quick runs (`max_train_examples`) keep the recipe of the whole dataset.
    config = config.resolved(task, train_size, positions)
    check_positions(config, positions)
    run = open_run(config, strategy, model_dir.MODEL_FILE)
    tokenizer = preset_tokenizer(config.preset, task)
    global_batch = config.batch_size * run.replicas
    rounds = Rounds.of_epochs(len(train), global_batch, config.epochs,
                              config.evaluations_per_epoch)
    with strategy.scope():
        model = build_task_model(config, task)
        unfreezing = compile_task_model(model, config, rounds)
    fingerprint = base_fingerprint(model.backbone)
    # Read by the truncation count, every training round and every validation round.
    ready = [task.prepared(split, tokenizer, config.max_length) for split in (train, validation)]
    truncated = _truncation(print_fn, config, task, tokenizer, *ready)
    skipped = _skipped_images(print_fn, train, validation)
    trainable, total = _print_plan(print_fn, config, task, model, train, validation, rounds,
                                   global_batch, run.replicas, run.precision)
    train_batches, validation_data = _batches(config, run, task, tokenizer, *ready)
    best, round_callbacks = _round_callbacks(config, run, task, validation_data, validation)
    seconds, resumed_at = train_rounds(
        run, model, train_batches, rounds, checkpoint_every=config.checkpoint_every,
        callbacks=unfreezing + round_callbacks + list(callbacks), tensorboard=True,
        verbose=verbose, print_fn=print_fn, verb="finetune")
    if not run.chief:  # the chief writes the model directory
        return close_run(run, {"train_seconds": round(seconds, 1)}, started)
    best.restore(model)
    outputs = predict_on_this_worker(model, validation_data)
    if config.tune_threshold:
        task.tune_thresholds(outputs, validation)
    metrics = task.report(outputs, validation)
    metrics.update(
        train_seconds=round(seconds, 1),
        train_examples_per_second=round(max(rounds.steps - resumed_at, 0) * global_batch
                                        / max(seconds, 1e-9), 1),
        best_round=best.best_round,
        **{f"last_round_{task.monitor}": last_logged(run, f"val_{task.monitor}")},
        truncated_train_examples=truncated["train"],
        truncated_validation_examples=truncated["validation"], method=config.method,
        trainable_parameters=trainable, total_parameters=total, **skipped)
    _save(config, run, model, tokenizer, task, fingerprint, metrics)
    close_run(run, metrics, started)
    last = metrics[f"last_round_{task.monitor}"]
    print_fn(f"finetune: validation {task.monitor} {metrics[task.monitor]:.4f} (best round "
             f"{best.best_round}; last round {'-' if last is None else f'{last:.4f}'}); "
             f"model directory {run.out}")
    return metrics


def _save(config, run, model, tokenizer, task, fingerprint, metrics):
    """Task weights, then the model directory (LoRA merged: it costs nothing at inference;
    the task weights keep the updates apart)."""
    save_task_weights(run.out / TASK_WEIGHTS_FILE, model, config.preset, fingerprint,
                      config.method, config.peft_options())
    metrics["task_weights_bytes"] = (run.out / TASK_WEIGHTS_FILE).stat().st_size
    inference_model = merge_lora(model) if config.method == "lora" else model
    save_model_directory(run.out, inference_model, tokenizer, task, config.to_dict(), metrics)
