"""keras_mapping: correct Transformer layers and the BERT family for Keras 3.

Pretrain, map, transfer: a WordPiece tokenizer that matches BERT's reference token for token,
serializable Keras layers written in `keras.ops`, BERT models built with the functional API,
and real pretrained weights.
"""

__version__ = "0.1.0"
