"""Parameter-efficient fine-tuning methods on the BERT family: which pieces a method adds to
the encoder blocks, which variables it trains, and merging LoRA back into the projections.

| method       | adds to each block                 | trains (besides the task head)        |
|--------------|------------------------------------|---------------------------------------|
| full         | nothing                            | everything the freezing flags leave   |
| adapter      | two bottleneck adapters            | adapters and every LayerNorm          |
| lora         | low-rank updates of projections    | the updates                           |
| prefix       | learned attention key/value prefix | the prefixes                          |
| bitfit       | nothing                            | every bias (LayerNorm betas included) |
| linear-probe | nothing                            | nothing: the backbone is frozen whole |

Example:
>>> from keras_mapping.models import BertBackbone, BertTextClassifier
>>> options = peft_options("lora", lora_rank=4)
>>> backbone = BertBackbone.from_architecture("bert_tiny", vocabulary_size=100, peft=options)
>>> classifier = BertTextClassifier(backbone, num_classes=2)
>>> select_trainable(classifier, "lora")
>>> trainable_parameters(classifier)  # 2 layers x 4 projections x 4 x (128 + 128), + head
8450
"""

import numpy as np
from keras import ops

from keras_mapping.layers.encoder import TransformerEncoder
from keras_mapping.layers.peft import (LORA_ATTENTION_TARGETS, LORA_TARGETS, AttentionPrefix,
                                       BottleneckAdapter, LowRankUpdate, check_positive_int)

METHODS = ("full", "adapter", "lora", "prefix", "bitfit", "linear-probe")
PEFT_LAYERS = (LowRankUpdate, BottleneckAdapter, AttentionPrefix)


def peft_options(method, lora_rank=8, lora_alpha=16.0, lora_dropout=0.1,
                 lora_targets=LORA_ATTENTION_TARGETS, adapter_dim=32, prefix_length=16):
    """The `BertBackbone(peft=...)` arguments of a method; only the method's own settings
    are checked and kept.

    Args:
        method: one of `METHODS`.
        lora_rank: rank of the LoRA updates.
        lora_alpha: LoRA scale numerator (updates are scaled by `lora_alpha / lora_rank`).
        lora_dropout: dropout on the LoRA updates' inputs.
        lora_targets: projections with LoRA updates (see `LORA_TARGETS`).
        adapter_dim: bottleneck width of the adapters.
        prefix_length: learned key/value positions per layer.

    Raises:
        ValueError: an unknown method or target, or a size that is not a positive integer.
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}.")
    if method == "lora":
        check_positive_int("lora_rank", lora_rank)
        if lora_alpha <= 0:
            raise ValueError(f"`lora_alpha` must be positive, got {lora_alpha!r}.")
        if not 0 <= lora_dropout < 1:
            raise ValueError(f"`lora_dropout` must be in [0, 1), got {lora_dropout!r}.")
        unknown = sorted(set(lora_targets) - set(LORA_TARGETS))
        if unknown or not lora_targets:
            raise ValueError(f"`lora_targets` must be a non-empty subset of {LORA_TARGETS}, "
                             f"got {list(lora_targets)}.")
        return {"lora_rank": lora_rank, "lora_alpha": float(lora_alpha),
                "lora_dropout": float(lora_dropout), "lora_targets": list(lora_targets)}
    if method == "adapter":
        check_positive_int("adapter_dim", adapter_dim)
        return {"adapter_dim": adapter_dim}
    if method == "prefix":
        check_positive_int("prefix_length", prefix_length)
        return {"prefix_length": prefix_length}
    return {}


def _encoder_blocks(model):
    backbone = getattr(model, "backbone", model)
    blocks = [layer for layer in getattr(backbone, "encoder_layers", [])
              if isinstance(layer, TransformerEncoder)]
    if not blocks:
        raise ValueError(
            f"Parameter-efficient methods need a model with `TransformerEncoder` blocks (a "
            f"BertBackbone or a task on one); got {type(model).__name__}.")
    return backbone, blocks


def _is_peft_variable(variable):
    return any(part.endswith(("_lora", "_adapter")) or part == "prefix"
               for part in variable.path.split("/")[:-1])


def select_trainable(model, method):
    """Narrows the trainable variables of `model` to those `method` trains (see the module
    table); the task head (everything outside the backbone) keeps training, and what is
    frozen stays frozen. Call it after layer-level freezing (`BertBackbone.freeze`), which
    resets every variable of a layer it touches, and recompile afterwards.

    Raises:
        ValueError: an unknown method, a model without encoder blocks, or a model that lacks
            the pieces the method trains (e.g. "lora" on a backbone built without
            `lora_rank`).
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}.")
    if method == "full":  # any backbone, Transformer blocks or not (ResNet)
        return
    if method == "linear-probe":
        # Frozen at the layer level, so that BatchNorm also keeps its statistics (a
        # non-trainable Keras BatchNorm runs in inference mode).
        getattr(model, "backbone", model).trainable = False
        return
    backbone, blocks = _encoder_blocks(model)
    required = {"adapter": "adapter_dim", "lora": "lora_rank", "prefix": "prefix_length"}
    if method in required and getattr(blocks[0], required[method]) is None:
        raise ValueError(
            f"method {method!r} needs a backbone built with its pieces "
            f"(`peft=peft_options({method!r})`); this one has no `{required[method]}`.")
    backbone_variables = {id(v) for v in backbone.weights}
    for variable in model.trainable_weights:
        if id(variable) not in backbone_variables:
            continue
        name = variable.path.rsplit("/", 1)[-1]
        if method == "bitfit":
            selected = name in ("bias", "beta")
        elif method == "adapter":
            selected = _is_peft_variable(variable) or "layer_norm" in variable.path
        else:
            selected = _is_peft_variable(variable)
        variable.trainable = selected


def trainable_parameters(model):
    """Number of scalars in `model.trainable_weights`."""
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def merge_lora(model):
    """A copy of `model` without LoRA updates whose projections compute the same outputs
    (each kernel plus its scaled low-rank product), so inference pays nothing for LoRA.

    Args:
        model: a `BertBackbone`, or a task model with a `backbone`, built with `lora_rank`.

    Returns:
        A new model of the same class, its backbone's `peft` without LoRA settings.
    """
    backbone, blocks = _encoder_blocks(model)
    if blocks[0].lora_rank is None:
        raise ValueError("merge_lora: the model has no LoRA updates to merge.")
    merged_kernels = {}
    for block in blocks:
        projections = {"query": block.attention_layer.query_dense,
                       "key": block.attention_layer.key_dense,
                       "value": block.attention_layer.value_dense,
                       "attention_output": block.attention_layer.output_dense,
                       "intermediate": block.intermediate_dense,
                       "output": block.output_dense}
        updates = {**block.attention_layer.lora_updates, **block.feedforward_lora}
        for target, update in updates.items():
            kernel = projections[target].kernel
            merged_kernels[kernel.path] = ops.convert_to_numpy(update.merged_kernel(kernel))

    config = model.get_config()
    backbone_config = config["backbone"]["config"] if backbone is not model else config
    backbone_config["peft"] = {key: value for key, value in backbone_config["peft"].items()
                               if not key.startswith("lora_")} or None
    merged = model.__class__.from_config(config)
    sources = {v.path: v for v in model.weights}
    for variable in merged.weights:
        if variable.path not in sources:
            raise ValueError(f"merge_lora: no source for variable {variable.path}.")
        variable.assign(merged_kernels.get(variable.path, sources[variable.path]))
    return merged
