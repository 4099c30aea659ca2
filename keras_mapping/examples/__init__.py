"""Small worked examples that the docs and notebooks walk through."""
