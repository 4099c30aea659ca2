"""Choosing where a run computes: one device, all local accelerators, several workers or a
TPU, through `tf.distribute` strategies. Models are built and compiled under
`strategy.scope()`, and `model.fit` splits each global batch across the replicas (across
workers too: `train_across_replicas`). Gradients are summed across replicas before they
are clipped (`keras_mapping.training.optimizers.AdamW`), so replicas train as one device.

Example:
>>> strategy = create_strategy("default")
>>> strategy.num_replicas_in_sync
1
"""

import json
import os
import socket
import weakref

import numpy as np
import tensorflow as tf

from keras_mapping.tracing import as_written

STRATEGIES = ("auto", "default", "mirrored", "multi-worker", "tpu")
# Inference runs in one process; training takes every strategy.
INFERENCE_STRATEGIES = tuple(name for name in STRATEGIES if name != "multi-worker")


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
        # Every MirroredStrategy numbers its collective ops from the same keys, so a second
        # run in one process (a notebook fine-tuning two models) met the first one's and
        # stopped with "Shape mismatch in the collective instance". TensorFlow's own tests
        # move the base before each new strategy; so does this.
        tf.distribute.MirroredStrategy._collective_key_base += 100_000
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


def loopback_cluster(workers):
    """`TF_CONFIG` values (JSON strings), one per worker, for a cluster of `workers`
    processes on this machine (127.0.0.1, free ports): to try `--strategy multi-worker`
    without a second machine.

    Example:
    >>> configs = loopback_cluster(2)
    >>> json.loads(configs[1])["task"]
    {'type': 'worker', 'index': 1}
    """
    sockets = [socket.socket() for _ in range(workers)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    addresses = [f"127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
    for sock in sockets:
        sock.close()
    return [json.dumps({"cluster": {"worker": addresses},
                        "task": {"type": "worker", "index": index}})
            for index in range(workers)]


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

    return dataset.map(as_written(lambda *element: tf.nest.map_structure(
        cast, element[0] if len(element) == 1 else element)))


def share_of_each_batch(dataset, strategy):
    """`dataset` of global batches distributed so that the replicas of a step split the same
    global batch one machine would train on, in order: with two workers, the first takes the
    first half of every batch and the second the other half.

    (`experimental_distribute_dataset` shards whole batches between workers instead, so
    a step of two workers would mix halves of two different global batches.) Every worker
    builds the whole pipeline, which the training pipelines do from the same seed.
    """
    if not is_multi_worker(strategy):
        return dataset
    replicas = strategy.num_replicas_in_sync

    def this_workers_shares(context):
        local = replicas // context.num_input_pipelines
        first = context.input_pipeline_id * local

        @as_written
        def shares(*element):
            element = element[0] if len(element) == 1 else element
            size = tf.shape(tf.nest.flatten(element)[0], out_type=tf.int64)[0] // replicas
            return tf.data.Dataset.range(first, first + local).map(
                lambda k: tf.nest.map_structure(lambda t: t[k * size:(k + 1) * size], element))

        return dataset.flat_map(shares)

    return strategy.distribute_datasets_from_function(this_workers_shares)


def replicas_in_sync():
    """Replicas computing the current step together (1 outside a replica context)."""
    context = tf.distribute.get_replica_context()
    return context.num_replicas_in_sync if context is not None else 1


def dense(gradients):
    """`gradients` with sparse ones (`tf.IndexedSlices` of embedding lookups) made dense.

    Their rows repeat where a token does: squaring the rows before summing them, as a norm
    over the sparse form does, is not the norm of the gradient.
    """
    return [None if gradient is None else tf.convert_to_tensor(gradient)
            for gradient in gradients]


def sum_across_replicas(gradients):
    """`gradients` (a list, None for variables without one) summed over the replicas."""
    present = [gradient for gradient in dense(gradients) if gradient is not None]
    summed = iter(tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.SUM, present) if present else [])
    return [None if gradient is None else next(summed) for gradient in gradients]


class WorkerLost(ConnectionError):
    """A worker of a multi-worker run stopped, so the others cannot go on."""


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def worker_position(strategy):
    """`(number of workers, this worker's index)`: `(1, 0)` on one machine."""
    if not is_multi_worker(strategy):
        return 1, 0
    resolver = strategy.cluster_resolver
    return len(resolver.cluster_spec().as_dict().get("worker", [])), resolver.task_id


def is_chief(strategy):
    """Whether this process writes a run's files: the first worker of several, or the only
    process."""
    return not is_multi_worker(strategy) or strategy.extended.should_checkpoint


def train_across_replicas(model, element_spec):
    """Makes `model.fit` under a strategy of several replicas train on the batches one
    device would, and under `MultiWorkerMirroredStrategy` train at all, with the step
    function as the only difference from one machine.

    Keras' `fit` learns the input shapes from a first batch it draws from the training
    data: the pipeline is then iterated a second time, and a shuffled pipeline reshuffles,
    so replicas would not see one device's batches. Here the shapes come from
    `element_spec`. Several workers also need their own step (keras-team/keras#20585: Keras
    averages each step's scalar logs over a batch axis they do not have): every replica runs
    `train_step` on its share (the optimizer sums the gradients across workers), then the
    logs are averaged.

    Args:
        model: a model compiled under the strategy.
        element_spec: the training dataset's `element_spec` (one global batch).
    """
    strategy = model.distribute_strategy
    if strategy.num_replicas_in_sync == 1:
        return

    def build_from_spec(iterator=None, data_batch=None):
        with strategy.scope():
            model._symbolic_build(data_batch=element_spec)

    def make_train_function(force=False):
        if model.train_function is None or force:
            model.train_function = synchronous_step(model.train_step, strategy)
        return model.train_function

    def make_test_function(force=False):
        if model.test_function is None or force:
            model.test_function = synchronous_step(model.test_step, strategy)
        return model.test_function

    model._maybe_symbolic_build = build_from_spec
    if is_multi_worker(strategy):
        # `compile` (gradual unfreezing recompiles) clears the functions: rebuilt here.
        model.make_train_function = make_train_function
        model.make_test_function = make_test_function


def this_workers_batches(dataset, strategy):
    """`dataset` as this worker's own batches for `fit` (unchanged on one machine).

    Two uses: validation, which every worker scores in full from the same split (the logs
    then average equal values), so that all take the same decisions and none waits on a
    batch another lacks; and training data a worker already read from its own files.
    """
    if dataset is None or not is_multi_worker(strategy):
        return dataset
    return strategy.distribute_datasets_from_function(lambda context: dataset)


def synchronous_step(step, strategy):
    """A function of a distributed iterator that runs `step` on every replica's share of
    the next global batch and returns its logs averaged over the replicas."""

    @tf.function
    def one_step(iterator):
        logs = strategy.run(step, args=(next(iterator),))
        return tf.nest.map_structure(
            lambda value: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None), logs)

    return one_step


_FORWARD = weakref.WeakKeyDictionary()


def predict_on_this_worker(model, dataset):
    """`model.predict(dataset)` computed by this process alone, whatever the strategy.

    Under several workers each validates the whole split by itself: every worker then takes
    the same best-weights and early-stopping decisions without exchanging predictions, and
    a split whose batches do not divide among the workers cannot leave one waiting.
    """
    if not is_multi_worker(model.distribute_strategy):
        return model.predict(dataset, verbose=0)
    if model not in _FORWARD:  # one function per model, traced once per input shape
        _FORWARD[model] = tf.function(lambda inputs: model(inputs, training=False),
                                      reduce_retracing=True)
    forward = _FORWARD[model]
    batches = [tf.nest.map_structure(lambda value: value.numpy(), forward(
        element[0] if isinstance(element, tuple) else element)) for element in dataset]
    return tf.nest.map_structure(lambda *parts: np.concatenate(parts), *batches)
