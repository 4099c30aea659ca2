"""Choosing where a run computes: one device, all local accelerators, several workers or a
TPU, through `tf.distribute` strategies. Models are built and compiled under
`strategy.scope()`, and `model.fit` splits each global batch across the replicas.

Example:
>>> strategy = create_strategy("default")
>>> strategy.num_replicas_in_sync
1
"""

import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multi-worker", "tpu")
# Keras' `fit` cannot consume MultiWorkerMirroredStrategy batches (keras-team/keras#20585):
# the recipes that train with `fit` take the others; several workers use `fit_multi_worker`.
FIT_STRATEGIES = tuple(name for name in STRATEGIES if name != "multi-worker")


def create_strategy(name="auto", tpu=None):
    """A `tf.distribute.Strategy` by name.

    Args:
        name: "auto" (a TPU when `tpu` is given, all GPUs when there are several, else one
            device), "default" (one device), "mirrored" (synchronous data parallelism over
            the local GPUs, or over the logical CPU devices when there is no GPU),
            "multi-worker" (synchronous over the workers that `TF_CONFIG` lists), or "tpu".
        tpu: the TPU's address ("grpc://10.0.0.2:8470", a TPU name, or "local").

    Raises:
        ValueError: an unknown name, "tpu" without an address, or "multi-worker" without
            a `TF_CONFIG` that lists workers.
    """
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}, got {name!r}.")
    if name == "auto":
        if tpu:
            name = "tpu"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
            d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi-worker":
        workers = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {}).get("worker")
        if not workers:
            raise ValueError("`strategy='multi-worker'` reads the cluster from the TF_CONFIG "
                             "environment variable, which lists no workers here; see "
                             "https://www.tensorflow.org/guide/distributed_training.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if not tpu:
        raise ValueError("`strategy='tpu'` needs the TPU's address: `tpu='grpc://HOST:8470'`"
                         ", a TPU name, or 'local' on a TPU VM.")
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def needs_static_shapes(strategy, tpu=None, jit_compile=False):
    """Whether batches should come in a few fixed shapes: XLA and TPUs compile a program
    per input shape, so per-batch lengths would recompile nearly every step.

    Example:
    >>> needs_static_shapes("auto", tpu="grpc://10.0.0.2:8470"), needs_static_shapes("default")
    (True, False)
    """
    return bool(jit_compile) or strategy == "tpu" or (strategy == "auto" and bool(tpu))


def as_distributable(dataset, strategy=None):
    """`dataset` with boolean features (padding masks) as int32, which the models' boolean
    inputs cast back. MirroredStrategy splits batches with an `AddN` that has no boolean
    kernel, so boolean features fail under it.

    Args:
        dataset: a `tf.data.Dataset`.
        strategy: the strategy it will feed; with a single replica `dataset` is returned
            unchanged (None: always convert).
    """
    if strategy is not None and strategy.num_replicas_in_sync == 1:
        return dataset

    def cast(value):
        return tf.cast(value, tf.int32) if value.dtype == tf.bool else value

    return dataset.map(lambda *element: tf.nest.map_structure(cast, element[0] if len(
        element) == 1 else element))


def fit_multi_worker(model, dataset, loss, optimizer, strategy, epochs=1):
    """Synchronous data-parallel training of `model` under `strategy` with a custom loop.

    Keras 3's `model.fit` cannot consume the per-replica batches of
    `MultiWorkerMirroredStrategy` (keras-team/keras#20585), so multi-worker runs train with
    this loop: each replica computes the loss of its slice averaged over the global batch,
    the strategy sums the gradients across workers, and every worker applies the same update.

    Args:
        model: a Keras model built under `strategy.scope()`.
        dataset: a `tf.data.Dataset` of `(inputs, labels)` global batches, the same on
            every worker (the strategy shards it).
        loss: a Keras loss whose reduction can be turned off (`reduction=None` is set here).
        optimizer: a Keras optimizer created under `strategy.scope()`.
        strategy: the `tf.distribute` strategy.
        epochs: passes over `dataset`.

    Returns:
        The mean loss of each epoch.
    """
    per_example = loss.__class__.from_config({**loss.get_config(), "reduction": None})

    def step(inputs, labels):
        global_batch = tf.cast(tf.shape(labels)[0] * strategy.num_replicas_in_sync, tf.float32)
        with tf.GradientTape() as tape:
            logits = model(inputs, training=True)
            value = tf.reduce_sum(per_example(labels, logits)) / global_batch
        gradients = tape.gradient(value, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return value

    @tf.function
    def distributed_step(inputs, labels):
        losses = strategy.run(step, args=(inputs, labels))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    history = []
    for _ in range(epochs):
        total, batches = 0.0, 0
        for inputs, labels in strategy.experimental_distribute_dataset(dataset):
            total += float(distributed_step(inputs, labels))
            batches += 1
        history.append(total / max(batches, 1))
    return history
