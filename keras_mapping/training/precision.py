"""Choosing a run's floating-point precision from what the hardware computes natively."""

import functools
from pathlib import Path

import keras

PRECISION_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
PRECISIONS = ("auto", *PRECISION_POLICIES)
NATIVE_BF16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The CPU feature flags the kernel reports (empty where there is no /proc/cpuinfo)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def _gpu_compute_capabilities():
    import tensorflow as tf

    capabilities = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        capabilities.append(details.get("compute_capability", (0, 0)))
    return capabilities


def resolve_precision(precision, cpuinfo="/proc/cpuinfo", gpu_capabilities=None):
    """`precision` itself, or for "auto": "bf16" where bf16 matrix products run natively
    (every GPU of compute capability 8.0 or newer, or a CPU with AVX512-BF16 or AMX-BF16,
    where they run about 3x faster than fp32), else "fp32" (bf16 emulated on older CPUs is
    slower than fp32).

    Example:
    >>> resolve_precision("fp32")
    'fp32'
    """
    if precision not in PRECISIONS:
        raise ValueError(f"`precision` must be one of {PRECISIONS}, got {precision!r}.")
    if precision != "auto":
        return precision
    if gpu_capabilities is None:
        gpu_capabilities = _gpu_compute_capabilities()
    if gpu_capabilities:
        return "bf16" if all(tuple(c) >= (8, 0) for c in gpu_capabilities) else "fp32"
    return "bf16" if cpu_flags(cpuinfo) & NATIVE_BF16_CPU_FLAGS else "fp32"


def restores_global_settings(run):
    """Decorates a run that sets process-wide state for its own models (Keras' dtype policy,
    TensorFlow's op determinism) so that the caller's settings are back when it returns or
    fails. Op determinism left on would, for one, make Keras silently compile later models
    without XLA."""

    @functools.wraps(run)
    def wrapper(*args, **kwargs):
        from tensorflow.python.framework import config as tf_config

        previous_policy = keras.config.dtype_policy()
        was_deterministic = tf_config.is_op_determinism_enabled()
        try:
            return run(*args, **kwargs)
        finally:
            keras.config.set_dtype_policy(previous_policy)
            if not was_deterministic:
                tf_config.disable_op_determinism()

    return wrapper
