"""Models assembled from `keras_mapping.layers` with the functional API."""

from keras_mapping.models import bert, gpt
from keras_mapping.models.bert import *  # noqa: F403  (the BERT family is the public API)
from keras_mapping.models.gpt import *  # noqa: F403

__all__ = list(bert.__all__) + list(gpt.__all__)
