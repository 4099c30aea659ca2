"""keras_mapping: correct Transformer layers and the BERT family for Keras 3.

Pretrain, map, transfer: a WordPiece tokenizer that matches BERT's reference token for token,
serializable Keras layers written in `keras.ops`, BERT models built with the functional API,
and real pretrained weights.

Importing the package registers every layer, model and tokenizer with Keras, so
`keras.saving.load_model` reads `.keras` files written by keras_mapping.
"""

# Before the first TensorFlow import below: quiets TensorFlow's start-up lines when this
# process is the `keras-mapping` command (the module imports no TensorFlow itself).
from keras_mapping.cli import startup as _startup

_startup.quiet_startup()

from keras_mapping import models, tokenizers  # noqa: E402, F401  (registers serializables)
from keras_mapping.data import images  # noqa: E402, F401  (registers ImagePreprocessor)

__version__ = "0.1.0"
