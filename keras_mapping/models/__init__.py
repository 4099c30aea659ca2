"""Models assembled from `keras_mapping.layers` with the functional API."""

from keras_mapping.models import bert
from keras_mapping.models.bert import *  # noqa: F403  (the BERT family is the public API)

__all__ = list(bert.__all__)
