"""Training recipes: the fine-tuning optimizer and schedules, callbacks, and the runs."""

from keras_mapping.training.optimizers import LayerwiseAdamW, create_optimizer
from keras_mapping.training.schedules import WarmupDecay

__all__ = ["LayerwiseAdamW", "WarmupDecay", "create_optimizer"]
