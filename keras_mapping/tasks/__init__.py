"""Task specs: what varies between the problems the engine trains (see `base.py`)."""
