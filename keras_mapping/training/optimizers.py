"""The fine-tuning optimizer: AdamW without decay on LayerNorm and biases, clipped by the
global norm of the whole batch's gradient, optionally with layer-wise learning-rate decay."""

import re
import threading

import keras
from keras import ops

from keras_mapping.training.distribute import dense, replicas_in_sync, sum_across_replicas
from keras_mapping.training.schedules import WarmupDecay

NO_WEIGHT_DECAY = ("bias", "gamma", "beta")
ENCODER_LAYER = re.compile(r"encoder_layer_(\d+)/")


def layerwise_factors(model, decay, num_layers):
    """Learning-rate multiplier per variable path: the top encoder layer and the heads get 1,
    each layer below gets `decay` times the one above, the embeddings get the lowest.

    Example:
    >>> from keras_mapping.models import BertBackbone
    >>> backbone = BertBackbone.from_architecture("bert_tiny", vocabulary_size=10)
    >>> factors = layerwise_factors(backbone, 0.5, 2)
    >>> factors["encoder_layer_0/attention/query/kernel"], factors["embeddings/layer_norm/gamma"]
    (0.5, 0.25)
    """
    factors = {}
    for variable in model.trainable_variables:
        match = ENCODER_LAYER.search(variable.path)
        if match:
            depth = num_layers - 1 - int(match.group(1))
        elif variable.path.startswith("embeddings/") or "/embeddings/" in variable.path:
            depth = num_layers
        else:
            depth = 0
        factors[variable.path] = float(decay**depth)
    return factors


@keras.saving.register_keras_serializable(package="keras_mapping")
class AdamW(keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` whose `global_clipnorm` clips the gradient of the global
    batch under a distribution strategy, as on one device.

    Keras clips each replica's gradient by that replica's own norm and sums the replicas
    after: with two replicas whose gradients are over the threshold, that moves the weights
    up to twice as far as one device would (3e-2 apart after 18 steps on a tiny BERT). Here
    the replicas are summed first, then clipped, and the sum is not summed again.
    """

    def _clip_gradients(self, grads):
        if not self.global_clipnorm:
            return super()._clip_gradients(grads)
        if replicas_in_sync() == 1:
            return super()._clip_gradients(dense(grads))
        self._summed_in_this_replica().done = True
        return super()._clip_gradients(sum_across_replicas(grads))

    def _all_reduce_sum_gradients(self, grads_and_vars):
        # TensorFlow's optimizer sums the replicas' gradients here, after clipping.
        summed = self._summed_in_this_replica()
        if getattr(summed, "done", False):
            summed.done = False
            return list(grads_and_vars)
        return super()._all_reduce_sum_gradients(grads_and_vars)

    def _summed_in_this_replica(self):
        # Replicas trace `apply` in threads of their own: the flag is per thread.
        if "_summed_flags" not in self.__dict__:
            self.__dict__["_summed_flags"] = threading.local()
        return self.__dict__["_summed_flags"]


@keras.saving.register_keras_serializable(package="keras_mapping")
class LayerwiseAdamW(AdamW):
    """AdamW whose step size is scaled per variable (layer-wise learning-rate decay).

    Args:
        factors: dict from variable path to learning-rate multiplier (missing paths: 1).
        **kwargs: `keras.optimizers.AdamW` arguments.
    """

    def __init__(self, factors=None, **kwargs):
        super().__init__(**kwargs)
        self.factors = dict(factors or {})

    def build(self, variables):
        super().build(variables)
        # Backends hand `update_step` their own variable objects, which lack Keras paths.
        self._factor_by_key = {self._var_key(v): self.factors.get(v.path, 1.0)
                               for v in variables}

    def update_step(self, gradient, variable, learning_rate):
        factor = self._factor_by_key.get(self._var_key(variable), 1.0)
        if factor != 1.0:
            learning_rate = ops.multiply(learning_rate, factor)
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config["factors"] = self.factors
        return config


def create_optimizer(
    learning_rate,
    total_steps,
    warmup_ratio=0.1,
    decay="linear",
    weight_decay=0.01,
    layerwise_decay=None,
    model=None,
    num_layers=None,
    global_clipnorm=1.0,
):
    """AdamW on a warmup-then-decay schedule, decay off for LayerNorm and biases.

    Args:
        learning_rate: peak learning rate.
        total_steps: optimizer steps of the whole run.
        warmup_ratio: fraction of `total_steps` spent warming up.
        decay: "linear" or "cosine".
        weight_decay: decoupled weight decay for kernels and embeddings.
        layerwise_decay: e.g. 0.9 to give each lower encoder layer 0.9x the learning rate of
            the one above; None for the same rate everywhere. Needs `model` and `num_layers`.
        model: the model whose variables the factors are for.
        num_layers: number of encoder layers.
        global_clipnorm: clip the norm of all gradients together; None disables it.

    Example:
    >>> optimizer = create_optimizer(5e-5, total_steps=1000)
    >>> round(float(optimizer.learning_rate), 8)  # step 0 of the warmup
    0.0
    """
    if learning_rate <= 0:
        raise ValueError(f"`learning_rate` must be positive, got {learning_rate}.")
    schedule = WarmupDecay(learning_rate, total_steps,
                           warmup_steps=int(warmup_ratio * total_steps), decay=decay)
    arguments = dict(learning_rate=schedule, weight_decay=weight_decay,
                     global_clipnorm=global_clipnorm)
    if layerwise_decay is not None:
        if model is None or num_layers is None:
            raise ValueError("`layerwise_decay` needs the `model` and its `num_layers`.")
        if not 0 < layerwise_decay <= 1:
            raise ValueError(f"`layerwise_decay` must be in (0, 1], got {layerwise_decay}.")
        optimizer = LayerwiseAdamW(
            factors=layerwise_factors(model, layerwise_decay, num_layers), **arguments)
    else:
        optimizer = AdamW(**arguments)
    optimizer.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY))
    return optimizer
