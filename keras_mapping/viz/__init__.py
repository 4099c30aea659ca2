"""Plots: attention heatmaps, training curves and confusion matrices (PNG via Agg), and the
`plot` command that draws them for a model directory."""

from keras_mapping.viz.cli import plot_model_directory
from keras_mapping.viz.plots import (attention_heatmaps, confusion_matrix, read_training_log,
                                     save_figure, training_curves)

__all__ = [
    "attention_heatmaps",
    "confusion_matrix",
    "plot_model_directory",
    "read_training_log",
    "save_figure",
    "training_curves",
]
