"""Sliding windows over a sequence longer than a model's input, and which window speaks
for each position: every position is predicted exactly once, from the window that gives it
the most context on both sides."""

import numpy as np


def window_spans(length, capacity, stride):
    """`(start, end)` windows of at most `capacity` positions covering `range(length)`,
    starting every `stride` positions; the last one ends at `length`.

    Example:
    >>> window_spans(10, capacity=4, stride=3)
    [(0, 4), (3, 7), (6, 10)]
    >>> window_spans(3, capacity=4, stride=2)
    [(0, 3)]
    """
    if capacity < 1:
        raise ValueError(f"`capacity` must be at least 1, got {capacity}.")
    if not 1 <= stride <= capacity:
        raise ValueError(f"`stride` must be between 1 and the window's {capacity} positions, "
                         f"got {stride}.")
    spans, start = [], 0
    while True:
        end = min(start + capacity, length)
        spans.append((start, end))
        if end >= length:
            return spans
        start += stride


def window_owners(length, spans):
    """For each position, the index of the window in `spans` that predicts it: the one where
    its nearer edge is farthest away (ties go to the earlier window).

    Example:
    >>> window_owners(10, [(0, 4), (3, 7), (6, 10)]).tolist()
    [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    """
    positions = np.arange(length)
    best = np.full(length, -1)
    best_context = np.full(length, -1)
    for index, (start, end) in enumerate(spans):
        inside = (positions >= start) & (positions < end)
        context = np.minimum(positions - start, end - 1 - positions)
        better = inside & (context > best_context)
        best[better], best_context[better] = index, context[better]
    if (best < 0).any():
        raise ValueError(f"the windows {spans} leave positions {np.flatnonzero(best < 0)[:5]} "
                         "uncovered")
    return best
