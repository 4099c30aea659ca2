"""Initializer helpers shared by the layers."""

import keras


def clone_initializer(initializer):
    """A fresh initializer with the same configuration.

    Sharing one seeded initializer object between sublayers would give them identical
    starting weights; a clone per sublayer keeps them independent.
    """
    return keras.initializers.get(keras.initializers.serialize(keras.initializers.get(initializer)))


def bert_kernel_initializer(stddev=0.02):
    """The truncated normal BERT initializes every kernel with."""
    return keras.initializers.TruncatedNormal(stddev=stddev)
