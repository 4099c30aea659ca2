"""Activations that BERT-family checkpoints name but Keras does not register by name."""

import keras


@keras.saving.register_keras_serializable(package="keras_mapping")
def gelu_approximate(x):
    """The tanh approximation of GELU (`gelu_new` in BERT-layout configs)."""
    return keras.activations.gelu(x, approximate=True)
