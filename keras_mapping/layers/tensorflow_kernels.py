"""What TensorFlow's CPU kernels do by themselves, for layers that choose a cheaper form of
the same computation when the backend is TensorFlow. The only TensorFlow import of
`keras_mapping.layers`, made when asked."""

import keras


def onednn_enabled():
    """Whether TensorFlow runs its oneDNN kernels and graph fusions here (x86 builds, unless
    `TF_ENABLE_ONEDNN_OPTS=0`). False on other backends.

    Example:
    >>> isinstance(onednn_enabled(), bool)
    True
    """
    if keras.backend.backend() != "tensorflow":
        return False
    from tensorflow.python.util import _pywrap_util_port  # public API has no such query

    return bool(_pywrap_util_port.IsMklEnabled())
