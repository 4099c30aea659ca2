"""Models assembled from `keras_mapping.layers` with the functional API."""

from keras_mapping.models import bert, gpt, resnet, vit
from keras_mapping.models.bert import *  # noqa: F403  (the BERT family is the public API)
from keras_mapping.models.gpt import *  # noqa: F403
from keras_mapping.models.ensemble import EnsembleModel
from keras_mapping.models.image_classifier import ImageClassifier
from keras_mapping.models.image_contrastive import ImageSimCLR
from keras_mapping.models.resnet import *  # noqa: F403
from keras_mapping.models.vit import *  # noqa: F403

__all__ = (list(bert.__all__) + list(gpt.__all__) + list(vit.__all__) + list(resnet.__all__)
           + ["EnsembleModel", "ImageClassifier", "ImageSimCLR"])
