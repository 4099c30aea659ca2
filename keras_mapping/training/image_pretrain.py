"""Self-supervised pretraining of an image backbone on unlabelled images (SimCLR), on the
same run engine as `finetune` and `pretrain`: resumable rounds, checkpoints, logs, NaN guard.

`pretrain_images(ImagePretrainConfig(...))` ends with a Hugging Face-layout directory
(config.json, model.safetensors, preprocessor_config.json) of the backbone alone, which
`finetune --preset DIR` reads; the projection head is dropped, as in the paper.
"""

import os
import time
from dataclasses import dataclass

import numpy as np

from keras_mapping.checkpoints import model_dir, vision_layout
from keras_mapping.data.image_views import contrastive_image_dataset, unlabeled_images
from keras_mapping.data.images import DEFAULT_MEAN, DEFAULT_STD
from keras_mapping.models import ImageSimCLR
from keras_mapping.models.image_classifier import IMAGE_ARCHITECTURES, image_backbone
from keras_mapping.tasks.metrics import target_log_probabilities
from keras_mapping.training.distribute import STRATEGIES, as_distributable, create_strategy
from keras_mapping.training.engine import Rounds, close_run, open_run, train_rounds
from keras_mapping.training.optimizers import create_optimizer
from keras_mapping.training.precision import PRECISIONS, restores_global_settings
from keras_mapping.training.run_state import Recipe

FINISHED_MARKER = vision_layout.CONFIG_FILE
PRESET_FILES = (vision_layout.WEIGHTS_FILE, vision_layout.PREPROCESSOR_FILE,
                vision_layout.CONFIG_FILE)  # config.json last: it marks the end


@dataclass
class ImagePretrainConfig(Recipe):
    """A self-supervised image pretraining run (SimCLR: two augmented views of each image,
    the rest of the batch as negatives).

    Args:
        images: a folder of images (JPEG or PNG) at any depth; class folders are allowed
            and their names ignored.
        out: output directory; it ends as a Hugging Face-layout directory of the backbone.
        preset: image architecture to train from scratch ("resnet20", "vit_cifar", ...;
            see `keras_mapping.models.image_classifier.IMAGE_ARCHITECTURES`).
        image_size: images are resized to this many pixels square (None: the images' most
            common size).
        epochs: passes over the images.
        batch_size: images per step and replica (each one's negatives are the others).
        learning_rate: peak learning rate (linear warmup, then cosine decay).
        warmup_ratio: fraction of steps warming up.
        weight_decay: AdamW weight decay (not on normalisation layers and biases).
        temperature: softmax temperature of the similarities.
        projection_dim: output width of the projection MLP.
        validation_share: share of the images held out to measure the loss and how often
            an image's other view ranks first in its batch (retrieval accuracy).
        rounds: validations (and resume points) over the run.
        checkpoint_every: steps between checkpoints within a round (0: round ends only).
        skip_bad_images: leave unreadable images out and count them, instead of stopping
            with their names.
        seed: seed for weights, image order, held-out images and views.
        precision: "auto", "fp32", "bf16" or "fp16".
        strategy: where to compute, as for `finetune`; `batch_size` is then per replica.
        tpu: the TPU's address for "tpu".
    """

    images: str = ""
    out: str = "saved_models/image_pretrained"
    preset: str = "resnet20"
    image_size: int | None = None
    epochs: float = 4.0
    batch_size: int = 256
    learning_rate: float = 2e-3
    warmup_ratio: float = 0.05
    weight_decay: float = 1e-4
    temperature: float = 0.2
    projection_dim: int = 128
    validation_share: float = 0.02
    rounds: int = 4
    checkpoint_every: int = 100
    skip_bad_images: bool = False
    seed: int = 42
    precision: str = "auto"
    strategy: str = "auto"
    tpu: str | None = None

    def __post_init__(self):
        checks = {
            "images": bool(self.images),
            "preset": self.preset in IMAGE_ARCHITECTURES,
            "image_size": self.image_size is None or self.image_size >= 8,
            "epochs": self.epochs > 0, "batch_size": self.batch_size >= 2,
            "learning_rate": self.learning_rate > 0,
            "warmup_ratio": 0 <= self.warmup_ratio < 1,
            "temperature": self.temperature > 0, "projection_dim": self.projection_dim >= 1,
            "validation_share": 0 <= self.validation_share < 1, "rounds": self.rounds >= 1,
            "checkpoint_every": self.checkpoint_every >= 0,
            "precision": self.precision in PRECISIONS,
            "strategy": self.strategy in STRATEGIES,
        }
        expected = {"images": "a folder of images",
                    "preset": f"one of {sorted(IMAGE_ARCHITECTURES)}",
                    "precision": f"one of {PRECISIONS}",
                    "strategy": f"one of {STRATEGIES}"}
        self.refuse_invalid(checks, expected)


def split_images(files, share, seed, batch_size):
    """`(training, held-out)` `ImageFiles`: a seeded sample of `share` of the images held
    out (none when that leaves fewer than one batch of either)."""
    held_out = int(len(files) * share)
    if len(files) - held_out < batch_size:
        raise ValueError(f"{files.source}: {len(files)} images leave fewer than one training "
                         f"batch of {batch_size}; add images or lower --batch-size.")
    order = np.random.default_rng(seed).permutation(len(files))
    if held_out < batch_size:
        return files, None
    return (files.subset(np.sort(order[held_out:])), files.subset(np.sort(order[:held_out])))


def retrieval_metrics(model, dataset):
    """Held-out contrastive loss, and the share of views whose other view ranks first in
    their batch."""
    cross_entropy = correct = total = 0.0
    for inputs, targets in dataset:
        logits = np.asarray(model(inputs, training=False), "float64")
        targets = np.asarray(targets)
        cross_entropy -= float(target_log_probabilities(logits, targets).sum())
        correct += float((logits.argmax(-1) == targets).sum())
        total += len(targets)
    return {"contrastive_loss": cross_entropy / total, "retrieval_accuracy": correct / total,
            "views": int(total)}


def _publish_backbone(backbone, preprocessing, run):
    """The backbone's preset files into the output directory, config.json last."""
    staging = run.state / "preset"
    backbone.save_to_preset(staging, preprocessing=preprocessing, overwrite=True)
    for name in PRESET_FILES:
        os.replace(staging / name, run.out / name)


@restores_global_settings
def pretrain_images(config, callbacks=(), verbose=1, print_fn=print):
    """Runs a SimCLR recipe and leaves the backbone in the Hugging Face layout in
    `config.out`; a killed run resumes when started again with the same settings.

    Returns:
        Held-out metrics (contrastive loss, retrieval accuracy) with timings.
    """
    started = time.time()
    strategy = create_strategy(config.strategy, config.tpu)
    global_batch = config.batch_size * strategy.num_replicas_in_sync
    files = unlabeled_images(config.images, "skip" if config.skip_bad_images else "error")
    train, held_out = split_images(files, config.validation_share, config.seed, global_batch)
    size = ((config.image_size,) * 2 if config.image_size else train.most_common_size())
    run = open_run(config, strategy, FINISHED_MARKER)
    rounds = Rounds.of_epochs(len(train) // global_batch * global_batch, global_batch,
                              config.epochs, config.rounds / config.epochs)
    with strategy.scope():
        model = ImageSimCLR(image_backbone(config.preset, size), config.projection_dim,
                            config.temperature)
        model.compile(optimizer=create_optimizer(
            config.learning_rate, rounds.steps, warmup_ratio=config.warmup_ratio,
            decay="cosine", weight_decay=config.weight_decay))
    print_fn(f"pretrain-images: {len(train):,} training and "
             f"{len(held_out) if held_out else 0:,} held-out images of {size[0]}x{size[1]}, "
             f"{config.preset} ({model.backbone.count_params():,} parameters), "
             f"{rounds.steps:,} steps in {rounds.rounds} rounds of global batches of "
             f"{global_batch} on {run.replicas} replica(s); precision {run.precision}")

    def batches(files_, step=0, **options):
        data = contrastive_image_dataset(files_, size, global_batch, DEFAULT_MEAN, DEFAULT_STD,
                                         seed=config.seed, **options)
        return as_distributable(data, strategy).skip(step)

    seconds, _ = train_rounds(run, model, lambda step: batches(train, step, repeat=True),
                              rounds, checkpoint_every=config.checkpoint_every,
                              callbacks=callbacks, verbose=verbose, print_fn=print_fn,
                              verb="pretrain-images")
    metrics = (retrieval_metrics(model, batches(held_out, shuffle=False)) if held_out
               else {})
    metrics.update(train_seconds=round(seconds, 1), steps=rounds.steps,
                   skipped_images=len(files.skipped), precision=run.precision)
    model_dir.write_json_atomically(run.out / model_dir.METRICS_FILE, metrics)
    _publish_backbone(model.backbone, vision_layout.preprocessor_config(
        DEFAULT_MEAN, DEFAULT_STD, size), run)
    close_run(run, metrics, started)
    print_fn(f"pretrain-images: held-out retrieval accuracy "
             f"{metrics.get('retrieval_accuracy', float('nan')):.4f}; output directory "
             f"{run.out}")
    return metrics
