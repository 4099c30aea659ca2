"""Training recipes: the fine-tuning optimizer and schedules, callbacks, and the runs."""

from keras_mapping.training.callbacks import (BestWeights, GradualUnfreezing,
                                              StopOnNonFiniteLoss)
from keras_mapping.training.finetune import FinetuneConfig, finetune
from keras_mapping.training.optimizers import LayerwiseAdamW, create_optimizer
from keras_mapping.training.pretrain import PretrainConfig, pretrain
from keras_mapping.training.schedules import WarmupDecay

__all__ = [
    "BestWeights",
    "FinetuneConfig",
    "GradualUnfreezing",
    "LayerwiseAdamW",
    "PretrainConfig",
    "StopOnNonFiniteLoss",
    "WarmupDecay",
    "create_optimizer",
    "finetune",
    "pretrain",
]
