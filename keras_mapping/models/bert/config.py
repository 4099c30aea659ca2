"""Named BERT architectures and conversion to and from the `config.json` of the BERT layout."""

# Sizes of the named BERT architectures (Turc et al. 2019 for the small ones; MiniLM-L6-H384
# for `minilm_l6`). Vocabulary and position limits are those of the uncased English models.
ARCHITECTURES = {
    "bert_tiny": dict(num_layers=2, hidden_dim=128, num_heads=2, intermediate_dim=512),
    "bert_mini": dict(num_layers=4, hidden_dim=256, num_heads=4, intermediate_dim=1024),
    "bert_small": dict(num_layers=4, hidden_dim=512, num_heads=8, intermediate_dim=2048),
    "bert_medium": dict(num_layers=8, hidden_dim=512, num_heads=8, intermediate_dim=2048),
    "bert_base": dict(num_layers=12, hidden_dim=768, num_heads=12, intermediate_dim=3072),
    "minilm_l6": dict(num_layers=6, hidden_dim=384, num_heads=12, intermediate_dim=1536),
}

DEFAULTS = dict(
    vocabulary_size=30522,
    max_sequence_length=512,
    num_segments=2,
    dropout=0.1,
    activation="gelu",
    layer_norm_epsilon=1e-12,
)

# Our constructor argument <- the key the BERT layout's config.json uses for it.
def architecture(name, **overrides):
    """Constructor arguments of `BertBackbone` for a named architecture.

    Args:
        name: one of `ARCHITECTURES`.
        **overrides: any constructor argument to change (e.g. `vocabulary_size`).

    Example:
    >>> architecture("bert_tiny")["hidden_dim"]
    128
    """
    if name not in ARCHITECTURES:
        raise ValueError(
            f"Unknown architecture '{name}'. Known: {', '.join(sorted(ARCHITECTURES))}.")
    return {**DEFAULTS, **ARCHITECTURES[name], **overrides}
