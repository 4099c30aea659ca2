"""Moving weights between our models and files in the BERT directory layout."""

from keras_mapping.checkpoints.presets import PRESETS, resolve_preset

__all__ = ["PRESETS", "resolve_preset"]
