"""Named ResNet architectures (He et al. 2016): the ImageNet ones in the reference
(Hugging Face) layout, and the CIFAR ones of the paper's section 4.2, with a 3x3 stem, no
max-pool and three stages of 16, 32 and 64 channels of `n` basic blocks each (depth 6n + 2).
The CIFAR models here use projection shortcuts (the paper's option B) where it used
zero-padding (option A): 0.3% more weights, and their checkpoints fit the reference layout."""

ARCHITECTURES = {
    # The smallest of the family (n = 1): tests and notebooks' small modes train it where
    # any ResNet will do, at a third of ResNet-20's tracing time.
    "resnet8": dict(embedding_size=16, hidden_sizes=[16, 32, 64], depths=[1, 1, 1],
                    layer_type="basic", stem="cifar"),
    "resnet20": dict(embedding_size=16, hidden_sizes=[16, 32, 64], depths=[3, 3, 3],
                     layer_type="basic", stem="cifar"),
    "resnet56": dict(embedding_size=16, hidden_sizes=[16, 32, 64], depths=[9, 9, 9],
                     layer_type="basic", stem="cifar"),
    "resnet18": dict(embedding_size=64, hidden_sizes=[64, 128, 256, 512], depths=[2, 2, 2, 2],
                     layer_type="basic", stem="imagenet"),
    "resnet50": dict(embedding_size=64, hidden_sizes=[256, 512, 1024, 2048],
                     depths=[3, 4, 6, 3], layer_type="bottleneck", stem="imagenet"),
}


def architecture(name, **overrides):
    """Constructor arguments of `ResNetBackbone` for a named architecture.

    Args:
        name: one of `ARCHITECTURES`.
        **overrides: any constructor argument to change.

    Example:
    >>> architecture("resnet56")["depths"]
    [9, 9, 9]
    """
    if name not in ARCHITECTURES:
        raise ValueError(
            f"Unknown architecture '{name}'. Known: {', '.join(sorted(ARCHITECTURES))}.")
    return {**ARCHITECTURES[name], **overrides}
