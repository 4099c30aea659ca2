"""How one tensor of a PyTorch-layout checkpoint maps onto one Keras variable.

Each mapping holds a getter of the variable (called only once the model is built), a
`file -> keras` and a `keras -> file` conversion of NumPy arrays, and whether the file may
leave the tensor out (it then loads as zeros).
"""

from typing import Callable, NamedTuple

import numpy as np


class TensorMapping(NamedTuple):
    variable: Callable
    to_keras: Callable
    to_file: Callable
    optional: bool = False

    def file_shape(self, variable):
        """The shape the file stores this variable in."""
        return self.to_file(np.zeros(variable.shape, "float32")).shape


def linear(variable, input_axes=1, optional=False):
    """A PyTorch Linear weight `(out, in)` <-> a Keras kernel whose first `input_axes` axes
    make up `in` (e.g. `(in, heads, head_dim)`, or `(heads, head_dim, out)` with 2)."""
    def to_file(value):
        return value.reshape(int(np.prod(value.shape[:input_axes])), -1).T

    return TensorMapping(variable, lambda tensor, v: tensor.T.reshape(v.shape), to_file,
                         optional)


def reshaped(variable, file_shape=lambda shape: (-1,), optional=False):
    """The same values in both, shaped `file_shape(keras shape)` in the file (flat by
    default: biases, normalization scales, offsets and statistics)."""
    return TensorMapping(variable, lambda tensor, v: tensor.reshape(v.shape),
                         lambda value: value.reshape(file_shape(value.shape)), optional)


def convolution(variable):
    """A PyTorch Conv2d weight `(out, in, height, width)` <-> a Keras Conv2D kernel
    `(height, width, in, out)`."""
    return TensorMapping(variable, lambda tensor, v: tensor.transpose(2, 3, 1, 0),
                         lambda value: value.transpose(3, 2, 0, 1))


def assign(mapping, tensors, path):
    """Copies `tensors` (file name -> array) into the variables of `mapping`.

    Raises:
        ValueError: a required tensor is missing or has the wrong shape; the message names
            the file `path`, the tensor and both shapes.
    """
    missing = [name for name, entry in mapping.items()
               if name not in tensors and not entry.optional]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ValueError(f"{path}: missing {len(missing)} tensor(s) the model needs: {shown}.")
    for name, entry in mapping.items():
        variable = entry.variable()
        if name not in tensors:
            variable.assign(np.zeros(variable.shape, "float32"))
            continue
        tensor = tensors[name]
        expected = entry.file_shape(variable)
        if tuple(tensor.shape) != tuple(expected):
            raise ValueError(
                f"{path}: tensor '{name}' has shape {tuple(tensor.shape)}, but the model "
                f"built from config.json needs {tuple(expected)} for variable "
                f"'{variable.path}'.")
        variable.assign(entry.to_keras(tensor.astype("float32"), variable))


def collect(mapping, prefix=""):
    """The file tensors of every variable in `mapping`, as contiguous float32 arrays."""
    return {prefix + name: np.ascontiguousarray(
                entry.to_file(np.asarray(entry.variable(), "float32")))
            for name, entry in mapping.items()}
