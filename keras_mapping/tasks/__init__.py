"""Task specs: what varies between the problems the engine trains (see `base.py`).

One module per task (`classification`, `regression`, `multi_label`, `token_classification`,
`image_classification`); `datasets` reads a
dataset into a task, `model_directory` saves and loads a fine-tuned model of any task.
"""

from keras_mapping.tasks.base import TextTask
from keras_mapping.tasks.classification import ClassificationTask
from keras_mapping.tasks.datasets import (TASK_CLASSES, TASKS, DataOptions, load_task_data,
                                          task_from_config)
from keras_mapping.tasks.image_classification import ImageClassificationTask
from keras_mapping.tasks.model_directory import (ModelBundle, load_model_directory,
                                                 save_model_directory)
from keras_mapping.tasks.multi_label import MultiLabelTask
from keras_mapping.tasks.regression import RegressionTask

__all__ = [
    "TASKS",
    "TASK_CLASSES",
    "ClassificationTask",
    "DataOptions",
    "ImageClassificationTask",
    "ModelBundle",
    "MultiLabelTask",
    "RegressionTask",
    "TextTask",
    "load_model_directory",
    "load_task_data",
    "save_model_directory",
    "task_from_config",
]
