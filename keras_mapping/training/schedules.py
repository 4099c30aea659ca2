"""Learning-rate schedules for fine-tuning: linear warmup, then linear or cosine decay."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_mapping")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Rises linearly from 0 to `peak` over `warmup_steps`, then decays to `peak * end_ratio`
    at `total_steps`, linearly or along a half cosine; constant after that.

    Args:
        peak: the learning rate at the end of warmup.
        total_steps: the step at which decay ends.
        warmup_steps: length of the warmup.
        decay: "linear" or "cosine".
        end_ratio: final learning rate as a fraction of `peak`.

    Example:
    >>> schedule = WarmupDecay(1e-3, total_steps=100, warmup_steps=10)
    >>> [round(float(schedule(step)), 6) for step in (0, 5, 10, 55, 100, 200)]
    [0.0, 0.0005, 0.001, 0.0005, 0.0, 0.0]
    """

    def __init__(self, peak, total_steps, warmup_steps=0, decay="linear", end_ratio=0.0):
        if decay not in ("linear", "cosine"):
            raise ValueError(f"`decay` must be 'linear' or 'cosine', got {decay!r}.")
        if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
            raise ValueError(
                f"Need 0 <= warmup_steps <= total_steps and total_steps >= 1, got "
                f"warmup_steps={warmup_steps}, total_steps={total_steps}.")
        self.peak = peak
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.decay = decay
        self.end_ratio = end_ratio

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = ops.cast(max(self.warmup_steps, 1), "float32")
        rising = self.peak * step / warmup
        progress = ops.clip(
            (step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 0.0, 1.0)
        if self.decay == "linear":
            shape = 1.0 - progress
        else:
            shape = 0.5 * (1.0 + ops.cos(math.pi * progress))
        falling = self.peak * (self.end_ratio + (1.0 - self.end_ratio) * shape)
        return ops.where(step < self.warmup_steps, rising, falling)

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "decay": self.decay,
            "end_ratio": self.end_ratio,
        }
