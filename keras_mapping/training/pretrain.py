"""Pretraining on unlabeled text: a BERT encoder with masked LM (optionally with
next-sentence prediction), from scratch or continued from a checkpoint (domain-adaptive
pretraining), or a GPT-style causal language model.

For the BERT objectives `pretrain(PretrainConfig(...))` ends with a BERT-layout directory
(config.json, model.safetensors, vocab.txt, tokenizer_config.json) that `finetune --preset
DIR` reads; the causal objective leaves `model.keras` with the vocabulary. A killed run
resumes from its last round when started again with the same settings.
"""

import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from keras_mapping.checkpoints import model_dir
from keras_mapping.checkpoints.bert_layout import tokenizer_config
from keras_mapping.data.corpus import open_corpus
from keras_mapping.data.corpus_stream import (check_training_data, held_out_examples,
                                              naming_corpus_errors, training_examples,
                                              vocabulary_sample)
from keras_mapping.data.pretraining import (causal_lm_dataset, contrastive_dataset,
                                           masked_lm_dataset)
from keras_mapping.data.readers import BAD_BYTES
from keras_mapping.models import (ARCHITECTURES, BertBackbone, BertMaskedLM, BertPretrainer,
                                  BertSimCSE)
from keras_mapping.models.gpt import GPTBackbone, GPTCausalLM
from keras_mapping.tokenizers import BertTokenizer, train_wordpiece_vocabulary
from keras_mapping.training.distribute import (STRATEGIES, as_distributable, create_strategy,
                                               needs_static_shapes, worker_position)
from keras_mapping.training.optimizers import create_optimizer
from keras_mapping.training.engine import Rounds, close_run, open_run, train_rounds
from keras_mapping.training.precision import PRECISIONS, restores_global_settings
from keras_mapping.training.run_state import Recipe
from keras_mapping.tasks.metrics import target_log_probabilities

OBJECTIVES = ("mlm", "mlm+nsp", "causal", "contrastive")
DEFAULT_VOCABULARY_PRESET = "minilm_l6"  # BERT's uncased 30,522-token vocabulary
PRESET_FILES = ("vocab.txt", "tokenizer_config.json", "model.safetensors", "config.json")
FINISHED_MARKERS = {"mlm": "config.json", "mlm+nsp": "config.json", "contrastive": "config.json",
                    "causal": "model.keras"}


@dataclass
class PretrainConfig(Recipe):
    """A pretraining run.

    Args:
        corpus: text files (gzip'd or not), TFRecord shards from `shard-corpus`, or folders
            of them (their `*.txt`, `*.txt.gz`, `*.tfrecord` files): one sentence a line,
            documents separated by blank lines (a file without blank lines is one
            document). Streamed, never read whole.
        out: output directory; it ends as a BERT-layout preset.
        objective: "mlm" (masked LM on single sentences), "mlm+nsp" (masked LM on sentence
            pairs plus next-sentence prediction), "contrastive" (SimCSE: two dropout views
            of each sentence, the rest of the batch as negatives, on mean pooling) or
            "causal" (next-token prediction with a GPT-style decoder of the same sizes).
        preset: architecture to train from scratch: a name such as "bert_mini" (see
            `keras_mapping.models.ARCHITECTURES`).
        init_from: preset name or BERT-layout directory to continue from (its weights and
            vocabulary; `preset` is then ignored).
        train_vocab: learn a WordPiece vocabulary on a sample of the training sentences
            first (at most 200,000, spread over the files; from scratch only; otherwise
            BERT's uncased vocabulary is used).
        vocab_size: size of that vocabulary.
        steps: training steps.
        batch_size: sequences per step and replica.
        learning_rate: peak learning rate (linear warmup, then linear decay).
        warmup_ratio: fraction of steps warming up.
        weight_decay: AdamW weight decay (not on LayerNorm and biases).
        max_length: longest packed sequence.
        mask_rate: share of tokens to predict (of those 80% `[MASK]`, 10% random, 10% kept).
        whole_word: mask whole words (all pieces of a chosen word) instead of single pieces.
        temperature: softmax temperature of the contrastive objective.
        validation_share: share of documents held out to measure MLM accuracy and
            perplexity, chosen by a fingerprint of their text (the same whatever the order
            of the files and the seed); at most 4,096 of their examples are measured.
        steps_per_round: steps between validations; each round is also a resume point.
        checkpoint_every: steps between checkpoints within a round, from which a killed run
            resumes (0: at round ends only).
        dropout: dropout rate in the backbone.
        seed: seed for weights, data order, masks and next-sentence draws.
        precision: "auto", "fp32", "bf16" or "fp16".
        on_bad_bytes: bytes that are not UTF-8 in the corpus: "error" stops, naming the file
            and line; "replace" reads them as U+FFFD.
        strategy: where to compute, as for `finetune`: "auto", "default", "mirrored" or
            "tpu"; `batch_size` is then per replica. (Contrastive in-batch negatives come
            from each replica's share of the batch.)
        tpu: the TPU's address for "tpu".
        jit_compile: compile the train step with XLA. Sequences are then padded to a few
            length buckets and masked-LM predictions to a fixed number of slots
            (`ceil(mask_rate * max_length)`, or `max_length` with `whole_word`), so XLA
            compiles one step per bucket; the same shapes are used on TPUs.
    """

    corpus: list = field(default_factory=list)
    out: str = "saved_models/pretrained"
    objective: str = "mlm"
    preset: str = "bert_mini"
    init_from: str | None = None
    train_vocab: bool = False
    vocab_size: int = 8000
    steps: int = 1000
    batch_size: int = 64
    learning_rate: float = 5e-4
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01
    max_length: int = 64
    mask_rate: float = 0.15
    whole_word: bool = False
    temperature: float = 0.05
    validation_share: float = 0.05
    steps_per_round: int = 200
    checkpoint_every: int = 100
    dropout: float = 0.1
    seed: int = 42
    precision: str = "auto"
    on_bad_bytes: str = "error"
    strategy: str = "auto"
    tpu: str | None = None
    jit_compile: bool = False

    def __post_init__(self):
        self.corpus = [str(path) for path in self.corpus]
        checks = {
            "objective": self.objective in OBJECTIVES,
            "preset": self.init_from is not None or self.preset in ARCHITECTURES,
            "train_vocab": not (self.train_vocab and self.init_from),
            "init_from": not (self.init_from and self.objective == "causal"),
            "vocab_size": self.vocab_size >= 10,
            "steps": self.steps >= 1,
            "batch_size": self.batch_size >= 1,
            "learning_rate": self.learning_rate > 0,
            "warmup_ratio": 0 <= self.warmup_ratio < 1,
            "max_length": self.max_length >= 8,
            "mask_rate": 0 < self.mask_rate < 1,
            "temperature": self.temperature > 0,
            "validation_share": 0 <= self.validation_share < 1,
            "steps_per_round": self.steps_per_round >= 1,
            "checkpoint_every": self.checkpoint_every >= 0,
            "dropout": 0 <= self.dropout < 1,
            "precision": self.precision in PRECISIONS,
            "on_bad_bytes": self.on_bad_bytes in BAD_BYTES,
            "strategy": self.strategy in STRATEGIES,
        }
        expected = {
            "objective": f"one of {OBJECTIVES}",
            "preset": f"one of {sorted(ARCHITECTURES)} (or pass init_from)",
            "train_vocab": "no vocabulary training when continuing from init_from",
            "init_from": "no init_from for the causal objective (BERT checkpoints are "
                         "bidirectional encoders)",
            "on_bad_bytes": f"one of {BAD_BYTES}",
            "strategy": f"one of {STRATEGIES}",
        }
        self.refuse_invalid(checks, expected)



def _tokenizer(config, corpus, state):
    if config.init_from:
        return BertTokenizer.from_preset(config.init_from)
    if not config.train_vocab:
        return BertTokenizer.from_preset(DEFAULT_VOCABULARY_PRESET)
    vocabulary = state / "vocab.txt"
    if not vocabulary.is_file():  # a resumed run keeps the vocabulary it trained on
        train_wordpiece_vocabulary(
            vocabulary_sample(corpus, validation_share=config.validation_share),
            config.vocab_size, output_path=str(vocabulary))
    return BertTokenizer(str(vocabulary))


def build_pretrainer(config, tokenizer):
    """The model of a run: `BertMaskedLM`, `BertPretrainer` or `GPTCausalLM`."""
    if config.objective == "causal":
        return GPTCausalLM(GPTBackbone.from_architecture(
            config.preset, vocabulary_size=tokenizer.vocabulary_size(), dropout=config.dropout))
    if config.init_from:
        backbone = BertBackbone.from_preset(config.init_from, dropout=config.dropout)
    else:
        backbone = BertBackbone.from_architecture(
            config.preset, vocabulary_size=tokenizer.vocabulary_size(), dropout=config.dropout)
    if config.objective == "mlm+nsp":
        return BertPretrainer(backbone)
    if config.objective == "contrastive":
        return BertSimCSE(backbone, temperature=config.temperature)
    return BertMaskedLM(backbone)


def _compile(model, config, total_steps):
    """The run's optimizer on the model's own compile defaults (`COMPILE_DEFAULTS`: masked
    cross-entropy over real prediction slots, as `model.compile()` from Python)."""
    model.compile(optimizer=create_optimizer(config.learning_rate, total_steps,
                                             warmup_ratio=config.warmup_ratio,
                                             weight_decay=config.weight_decay),
                  jit_compile=config.jit_compile)


def token_prediction_metrics(model, dataset, objective):
    """Exact held-out metrics over every predicted token of `dataset`, summed rather than
    averaged per batch: accuracy, cross-entropy and perplexity (`mlm_*` for the masked
    objectives, `next_token_*` for causal), and NSP accuracy for "mlm+nsp"."""
    prefix = "next_token" if objective == "causal" else "mlm"
    next_sentence = objective == "mlm+nsp"
    correct = total = cross_entropy = 0.0
    nsp_correct = nsp_total = 0
    for inputs, labels, weights in dataset:
        outputs = model(inputs, training=False)
        logits = np.asarray(outputs["mlm"] if next_sentence else outputs, "float64")
        targets = np.asarray(labels["mlm"] if next_sentence else labels)
        target_weights = np.asarray(weights["mlm"] if next_sentence else weights)
        picked = target_log_probabilities(logits, targets)
        cross_entropy -= float((picked * target_weights).sum())
        correct += float(((logits.argmax(-1) == targets) * target_weights).sum())
        total += float(target_weights.sum())
        if next_sentence:
            nsp = np.asarray(outputs["nsp"]).argmax(-1)
            nsp_correct += int((nsp == np.asarray(labels["nsp"])).sum())
            nsp_total += len(nsp)
    if not total:
        return {}
    metrics = {f"{prefix}_accuracy": correct / total,
               f"{prefix}_cross_entropy": cross_entropy / total,
               "perplexity": math.exp(cross_entropy / total), "predicted_tokens": int(total)}
    if next_sentence:
        metrics["nsp_accuracy"] = nsp_correct / nsp_total
    return metrics


def contrastive_metrics(model, dataset):
    """Held-out SimCSE loss and in-batch retrieval accuracy, with dropout on (with it off
    the two views coincide and the task is trivial)."""
    cross_entropy = correct = total = 0.0
    for inputs, targets, _ in dataset:
        logits = np.asarray(model(inputs, training=True), "float64")
        targets = np.asarray(targets)
        cross_entropy -= float(target_log_probabilities(logits, targets).sum())
        correct += float((logits.argmax(-1) == targets).sum())
        total += len(targets)
    if not total:
        return {}
    return {"contrastive_loss": cross_entropy / total, "retrieval_accuracy": correct / total,
            "sentences": int(total)}


def _dataset(examples, tokenizer, config, batch_size, **options):
    options["static_shapes"] = needs_static_shapes(config.strategy, config.tpu,
                                                   config.jit_compile)
    if config.objective == "contrastive":
        return contrastive_dataset(examples, tokenizer, max_length=config.max_length,
                                   batch_size=batch_size, **options)
    if config.objective == "causal":
        return causal_lm_dataset(examples, tokenizer, max_length=config.max_length,
                                 batch_size=batch_size, **options)
    return masked_lm_dataset(examples, tokenizer, max_length=config.max_length,
                             batch_size=batch_size, mask_rate=config.mask_rate,
                             whole_word=config.whole_word,
                             next_sentence=config.objective == "mlm+nsp", **options)


def _save_causal_lm(model, tokenizer, out):
    """vocab.txt and tokenizer_config.json, then model.keras last (the finished marker)."""
    model_dir.write_text_atomically(out / "vocab.txt",
                                    "\n".join(tokenizer.get_vocabulary()) + "\n")
    model_dir.write_json_atomically(out / "tokenizer_config.json", tokenizer_config(tokenizer))
    model_dir.write_atomically(out / model_dir.MODEL_FILE, model.save)


def _publish_preset(backbone, tokenizer, out, state):
    """Writes the preset files into `out`, config.json last: a directory with a config.json
    is complete."""
    staging = state / "preset"
    backbone.save_to_preset(staging, tokenizer=tokenizer, overwrite=True)
    for name in PRESET_FILES:
        os.replace(staging / name, out / name)


@restores_global_settings
def pretrain(config, callbacks=(), verbose=1, print_fn=print):
    """Runs a pretraining recipe and leaves a BERT-layout preset in `config.out` (for the
    causal objective: `model.keras` with the vocabulary).

    Args:
        config: a `PretrainConfig`.
        callbacks: extra Keras callbacks.
        verbose: Keras progress output.
        print_fn: where summary lines go.

    Returns:
        Held-out metrics of the final weights (token accuracy, cross-entropy, perplexity; NSP
        accuracy; for "contrastive" loss and retrieval accuracy) with timings.
    """
    started = time.time()
    # Before TensorFlow runs anything: some strategies configure the runtime.
    strategy = create_strategy(config.strategy, config.tpu)
    global_batch_size = config.batch_size * strategy.num_replicas_in_sync
    corpus = open_corpus(config.corpus, on_bad_bytes=config.on_bad_bytes)
    # A bad byte met later, mid-stream, stops the run with its file and line.
    with naming_corpus_errors(corpus):
        # Refused before anything is written: a corpus that cannot give one batch.
        check_training_data(corpus, validation_share=config.validation_share,
                            next_sentence=config.objective == "mlm+nsp",
                            batch_size=global_batch_size)
        run = open_run(config, strategy, FINISHED_MARKERS[config.objective])
        tokenizer = _tokenizer(config, corpus, run.state)
        rounds = Rounds.of_steps(config.steps, config.steps_per_round)
        with strategy.scope():
            model = build_pretrainer(config, tokenizer)
            _compile(model, config, rounds.steps)
        validation_data = _validation_data(corpus, tokenizer, config, global_batch_size)
        print_fn(f"pretrain: streaming {corpus.describe()}, objective {config.objective}, "
                 f"{model.count_params():,} parameters, {rounds.steps:,} steps in "
                 f"{rounds.rounds} rounds of global batches of {global_batch_size} on "
                 f"{run.replicas} replica(s); precision {run.precision}")
        # Keras validates without dropout, which makes the contrastive views identical.
        per_round_validation = None
        if validation_data is not None and config.objective != "contrastive":
            per_round_validation = as_distributable(validation_data, strategy)
        train_batches, per_worker = _training_batches(corpus, tokenizer, config, strategy,
                                                      print_fn)
        seconds, _ = train_rounds(
            run, model, train_batches, rounds, checkpoint_every=config.checkpoint_every,
            callbacks=callbacks, validation_data=per_round_validation, verbose=verbose,
            print_fn=print_fn, verb="pretrain", per_worker=per_worker)
        if not run.chief:  # the chief measures and writes the preset
            return close_run(run, {"train_seconds": round(seconds, 1)}, started)
        metrics = _held_out_metrics(model, validation_data, config.objective)
    metrics.update(train_seconds=round(seconds, 1), steps=rounds.steps,
                   precision=run.precision)
    model_dir.write_json_atomically(run.out / model_dir.METRICS_FILE, metrics)
    if config.objective == "causal":
        _save_causal_lm(model, tokenizer, run.out)
    else:
        _publish_preset(model.backbone, tokenizer, run.out, run.state)
    close_run(run, metrics, started)
    accuracy = metrics.get("next_token_accuracy", metrics.get("mlm_accuracy", math.nan))
    print_fn(f"pretrain: held-out token accuracy {accuracy:.4f}, perplexity "
             f"{metrics.get('perplexity', math.nan):.2f}; output directory {run.out}")
    return metrics


def _training_batches(corpus, tokenizer, config, strategy, print_fn):
    """`(train_batches, per_worker)` for `train_rounds`: `train_batches(step)` rebuilds the
    stream and skips to batch `step` (reading the skipped batches again, not training on
    them), so a resumed run sees the batches the killed one would have.

    Several workers each read their own files when there are at least as many files as
    workers (`per_worker`: this worker's part of each global batch comes from its files);
    otherwise every worker streams the whole corpus and takes its share of each global
    batch, which trains exactly as one machine would."""
    workers, index = worker_position(strategy)
    per_worker = 1 < workers <= len(corpus.files)
    if per_worker:  # each replica takes a batch of its worker's own
        batch_size = config.batch_size
        print_fn(f"pretrain: worker {index} of {workers} reads "
                 f"{len(corpus.files[index::workers])} of the {len(corpus.files)} files")
    else:
        workers, index = 1, 0
        batch_size = config.batch_size * strategy.num_replicas_in_sync

    def train_batches(step):
        examples = training_examples(
            corpus, validation_share=config.validation_share,
            next_sentence=config.objective == "mlm+nsp", seed=config.seed,
            num_workers=workers, worker_index=index)
        batches = _dataset(examples, tokenizer, config, batch_size, seed=config.seed,
                           repeat=True)
        return as_distributable(batches, strategy).skip(step)

    return train_batches, per_worker


def _validation_data(corpus, tokenizer, config, global_batch_size):
    if not config.validation_share:
        return None
    examples = held_out_examples(corpus, validation_share=config.validation_share,
                                 next_sentence=config.objective == "mlm+nsp",
                                 seed=config.seed + 1)
    # Masks drawn once and cached (the held-out examples are bounded), so every round is
    # measured on the same predictions.
    data = _dataset(examples, tokenizer, config, global_batch_size, seed=config.seed + 1,
                    shuffle=False).cache()
    # Grouping by length hides the number of batches; counting them (which fills the
    # cache) keeps Keras from warning that validation "ran out of data".
    batches = sum(1 for _ in data)
    if not batches:  # a corpus too small for any document to fall in the share
        return None
    return data.apply(tf.data.experimental.assert_cardinality(batches))


def _held_out_metrics(model, validation_data, objective):
    if validation_data is None:
        return {}
    if objective == "contrastive":
        return contrastive_metrics(model, validation_data)
    return token_prediction_metrics(model, validation_data, objective)
