"""Named Vision Transformer architectures: those of Dosovitskiy et al. 2021 (DeiT for the tiny
and small widths) with 16x16 patches, and `vit_cifar` for 32x32 images: the layout of
ViT-Lite-6/4 (Hassani et al. 2021: 6 blocks, 4x4 patches, feed-forward twice the width) at
DeiT-Tiny's width and heads, which trains about 1.6 times as fast as ViT-Lite-6/4 on a CPU
(BENCHMARKS.md, "Images")."""

ARCHITECTURES = {
    "vit_tiny": dict(hidden_dim=192, num_layers=12, num_heads=3, intermediate_dim=768),
    "vit_small": dict(hidden_dim=384, num_layers=12, num_heads=6, intermediate_dim=1536),
    "vit_base": dict(hidden_dim=768, num_layers=12, num_heads=12, intermediate_dim=3072),
    "vit_cifar": dict(hidden_dim=192, num_layers=6, num_heads=3, intermediate_dim=384,
                      patch_size=4, image_size=32),
}

DEFAULTS = dict(image_size=224, patch_size=16, num_channels=3, dropout=0.0,
                activation="gelu", layer_norm_epsilon=1e-12)


def architecture(name, **overrides):
    """Constructor arguments of `ViTBackbone` for a named architecture.

    Args:
        name: one of `ARCHITECTURES`.
        **overrides: any constructor argument to change (e.g. `image_size`).

    Example:
    >>> architecture("vit_small", image_size=32)["hidden_dim"]
    384
    """
    if name not in ARCHITECTURES:
        raise ValueError(
            f"Unknown architecture '{name}'. Known: {', '.join(sorted(ARCHITECTURES))}.")
    return {**DEFAULTS, **ARCHITECTURES[name], **overrides}
