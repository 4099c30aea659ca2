"""Evaluation metrics of every task, in NumPy, on whole-dataset arrays of logits.

Classification (accuracy, F1, Matthews correlation), regression (Pearson and Spearman x 100,
as GLUE reports STS-B) and multi-label classification (micro/macro F1, exact match, per-label
thresholds). Everything is computed in float64 from the full arrays, so a metric is exact for
the dataset and does not depend on how it was batched. Every function returns plain Python
numbers and lists, ready for JSON.
"""

import numpy as np


def target_log_probabilities(logits, targets):
    """log softmax(logits)[..., target] along the last axis, computed stably in float64.

    Example:
    >>> target_log_probabilities(np.array([[0.0, 0.0]]), np.array([1])).round(4).tolist()
    [-0.6931]
    """
    logits = np.asarray(logits, "float64")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_normalizer = np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(shifted, np.asarray(targets)[..., None], axis=-1)
    return (picked - log_normalizer)[..., 0]


# 0.05, 0.10, ..., 0.95; rounded so that 0.3 is 0.3 and not 0.30000000000000004.
DEFAULT_THRESHOLD_CANDIDATES = np.round(np.arange(0.05, 0.96, 0.05), 2)


def sigmoid(x):
    """Logistic function, stable for large |x| (never exponentiates a positive number).

    Args:
        x: array-like of floats, any shape.

    Returns:
        float64 array of the same shape, with values in [0, 1].

    Example:
    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0])).tolist()
    [0.0, 0.5, 1.0]
    """
    x = np.asarray(x, "float64")
    decay = np.exp(-np.abs(x))  # in (0, 1]: cannot overflow
    return np.where(x >= 0, 1.0 / (1.0 + decay), decay / (1.0 + decay))


def softmax(logits):
    """Softmax along the last axis, stable for large logits (the row maximum is subtracted).

    Args:
        logits: array-like of floats, [..., K].

    Returns:
        float64 array of the same shape whose last axis sums to 1.

    Example:
    >>> softmax(np.array([[1000.0, 1000.0], [0.0, np.log(3.0)]])).round(4).tolist()
    [[0.5, 0.5], [0.25, 0.75]]
    """
    logits = np.asarray(logits, "float64")
    exponentials = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def average_ranks(values):
    """1-based ranks of `values`, tied values sharing the average of the ranks they span.

    Args:
        values: 1-D array-like of numbers.

    Returns:
        float64 array of ranks, same length as `values`.

    Example:
    >>> average_ranks([1, 2, 2, 3]).tolist()
    [1.0, 2.5, 2.5, 4.0]
    """
    values = np.asarray(values)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts_group = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(starts_group)
    ends = np.r_[starts[1:], len(values)]
    # A group at 0-based positions starts..ends-1 spans ranks starts+1..ends; take their mean.
    group_rank = (starts + 1 + ends) / 2.0
    ranks = np.empty(len(values), "float64")
    ranks[order] = group_rank[np.cumsum(starts_group) - 1]
    return ranks


def classification_metrics(logits, labels, num_classes):
    """Accuracy, F1, Matthews correlation and cross-entropy of single-label predictions.

    The prediction is the argmax of the logits. Per-class F1 is 2tp / (2tp + fp + fn); a class
    with no true and no predicted example has F1 0.0 (sklearn's zero_division=0), and it still
    counts in the macro mean. `f1` is what GLUE reports: with 2 classes, the F1 of the positive
    class (label id 1, as for MRPC and QQP); with more than 2 classes, the macro F1. `mcc` is
    Matthews' correlation, for K classes Gorodkin's R_K computed from the confusion matrix
    (equal to the usual binary formula when K = 2), and 0.0 when its denominator is 0 (as
    sklearn does), e.g. when every prediction is the same class.

    Args:
        logits: float array [n, num_classes].
        labels: int array [n] of class ids in [0, num_classes).
        num_classes: the number of classes K.

    Returns:
        dict with `accuracy` (fraction), `macro_f1`, `f1`, `mcc`, `loss` (mean cross-entropy of
        the logits, in nats), `num_examples`, and `confusion_matrix` (list of K lists of K ints,
        rows = true labels, columns = predictions).

    Example:
    >>> logits = np.array([[2.0, 0.0], [0.0, 2.0], [0.0, 2.0], [2.0, 0.0]])
    >>> result = classification_metrics(logits, np.array([0, 1, 0, 0]), num_classes=2)
    >>> result["accuracy"], round(result["f1"], 4), round(result["mcc"], 4)
    (0.75, 0.6667, 0.5774)
    >>> result["confusion_matrix"]
    [[2, 1], [0, 1]]
    """
    logits = _as_matrix(logits, "logits")
    labels = np.asarray(labels)
    _check_classification_inputs(logits, labels, num_classes)
    matrix = _confusion_matrix(labels, logits.argmax(axis=-1), num_classes)
    per_class_f1 = _per_class_f1(matrix)
    macro_f1 = float(per_class_f1.mean())
    return {
        "accuracy": float(np.trace(matrix) / matrix.sum()),
        "macro_f1": macro_f1,
        "f1": float(per_class_f1[1]) if num_classes == 2 else macro_f1,
        "mcc": _multiclass_matthews(matrix),
        "loss": float(-target_log_probabilities(logits, labels).mean()),
        "num_examples": int(len(labels)),
        "confusion_matrix": matrix.tolist(),
    }


def regression_metrics(predictions, targets):
    """Pearson and Spearman correlations (x 100, GLUE's convention) and mean squared error.

    Spearman is the Pearson correlation of the ranks, tied values getting their average rank
    (`average_ranks`). A correlation with a constant prediction or target vector is undefined;
    it is reported as 0.0, not NaN, so that a collapsed model scores 0 rather than breaking
    the comparison of runs.

    Args:
        predictions: float array [n] or [n, 1].
        targets: float array [n] or [n, 1].

    Returns:
        dict with `pearson`, `spearman` (both in [-100, 100]), `mse` and `num_examples`.

    Example:
    >>> result = regression_metrics(np.array([[1.0], [2.0], [4.0]]), np.array([1.0, 2.0, 3.0]))
    >>> round(result["pearson"], 2), result["spearman"], round(result["mse"], 4)
    (98.2, 100.0, 0.3333)
    """
    predictions = _as_vector(predictions, "predictions")
    targets = _as_vector(targets, "targets")
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions {predictions.shape} and targets {targets.shape} differ")
    return {
        "pearson": 100.0 * _pearson(predictions, targets),
        "spearman": 100.0 * _pearson(average_ranks(predictions), average_ranks(targets)),
        "mse": float(np.mean((predictions - targets) ** 2)),
        "num_examples": int(len(targets)),
    }


def multi_label_metrics(logits, targets, thresholds=0.5):
    """Micro and macro F1, exact match and binary cross-entropy of multi-label predictions.

    A label is predicted when sigmoid(logit) >= its threshold. Micro F1 pools the tp/fp/fn
    counts of all labels; macro F1 averages the per-label F1, where a label with no positive
    target and no positive prediction has F1 0.0 (sklearn's zero_division=0), not 1.0.

    Args:
        logits: float array [n, L].
        targets: 0/1 array [n, L].
        thresholds: one float for every label, or a sequence of L floats, one per label.

    Returns:
        dict with `micro_f1`, `macro_f1`, `exact_match` (share of rows with every label right),
        `loss` (binary cross-entropy averaged over all n * L entries), `num_examples`, and
        `thresholds` (the list of L thresholds used).

    Example:
    >>> logits = np.array([[3.0, -3.0], [3.0, 3.0]])
    >>> result = multi_label_metrics(logits, np.array([[1, 0], [1, 0]]))
    >>> round(result["micro_f1"], 4), result["macro_f1"], result["exact_match"]
    (0.8, 0.5, 0.5)
    >>> result["thresholds"]
    [0.5, 0.5]
    """
    logits = _as_matrix(logits, "logits")
    targets = _as_binary_targets(targets, logits.shape)
    thresholds = _per_label_thresholds(thresholds, logits.shape[1])
    predicted = sigmoid(logits) >= thresholds
    tp, fp, fn = _label_counts(predicted, targets)
    return {
        "micro_f1": float(_f1(tp.sum(), fp.sum(), fn.sum())),
        "macro_f1": float(_f1(tp, fp, fn).mean()),
        "exact_match": float(np.mean(np.all(predicted == targets, axis=1))),
        "loss": float(np.mean(_binary_cross_entropy(logits, targets))),
        "num_examples": int(len(logits)),
        "thresholds": thresholds.tolist(),
    }


def tune_thresholds(probabilities, targets, candidates=None):
    """Per label, the candidate threshold that maximises that label's F1 on the given data.

    Ties go to the candidate closest to 0.5 (then to the smaller one), so a label that no
    threshold helps, e.g. one without positive targets, keeps 0.5 when 0.5 is a candidate.
    Tune on validation data and report on test data: thresholds tuned on the data they are
    scored on overstate F1.

    Args:
        probabilities: float array [n, L] of sigmoid probabilities.
        targets: 0/1 array [n, L].
        candidates: thresholds to try; default 0.05, 0.10, ..., 0.95.

    Returns:
        list of L floats, to pass as `thresholds` to `multi_label_metrics`.

    Example:
    >>> probabilities = np.array([[0.3, 0.9], [0.2, 0.8], [0.1, 0.7]])
    >>> tune_thresholds(probabilities, np.array([[1, 0], [1, 0], [0, 0]]))
    [0.2, 0.5]
    """
    probabilities = _as_matrix(probabilities, "probabilities")
    targets = _as_binary_targets(targets, probabilities.shape)
    if candidates is None:
        candidates = DEFAULT_THRESHOLD_CANDIDATES
    candidates = np.asarray(candidates, "float64").reshape(-1)
    # Try the candidates nearest 0.5 first; argmax keeps the first maximum, hence the tie rule.
    # Distances are rounded so that 0.45 and 0.55 tie despite float error, then 0.45 wins.
    candidates = candidates[np.lexsort((candidates, np.round(np.abs(candidates - 0.5), 9)))]
    scores = np.stack([_f1(*_label_counts(probabilities >= c, targets)) for c in candidates])
    return candidates[scores.argmax(axis=0)].tolist()


# --- counts and formulas --------------------------------------------------------------------


def _f1(tp, fp, fn):
    """2tp / (2tp + fp + fn) elementwise, 0.0 where nothing is true or predicted."""
    tp, fp, fn = (np.asarray(count, "float64") for count in (tp, fp, fn))
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator), where=denominator > 0)


def _confusion_matrix(labels, predictions, num_classes):
    matrix = np.zeros((num_classes, num_classes), "int64")
    np.add.at(matrix, (labels, predictions), 1)  # add.at counts repeated (label, pred) pairs
    return matrix


def _per_class_f1(matrix):
    tp = np.diag(matrix)
    return _f1(tp, matrix.sum(axis=0) - tp, matrix.sum(axis=1) - tp)


def _multiclass_matthews(matrix):
    """Gorodkin's R_K: (c s - t.p) / sqrt((s^2 - p.p) (s^2 - t.t)), from the confusion matrix.

    c = correct predictions, s = examples, t = true counts per class, p = predicted counts.
    """
    matrix = matrix.astype("float64")  # s^2 overflows no float64 but could overflow int64
    correct, total = np.trace(matrix), matrix.sum()
    true_counts, predicted_counts = matrix.sum(axis=1), matrix.sum(axis=0)
    numerator = correct * total - true_counts @ predicted_counts
    denominator = np.sqrt(total**2 - predicted_counts @ predicted_counts) * np.sqrt(
        total**2 - true_counts @ true_counts)
    return float(numerator / denominator) if denominator > 0 else 0.0


def _pearson(x, y):
    # An exact check, not a tolerance: the centred sums of a constant vector can be tiny
    # non-zeros from rounding the mean, which would make a correlation out of noise.
    if np.all(x == x[0]) or np.all(y == y[0]):
        return 0.0
    x, y = x - x.mean(), y - y.mean()
    correlation = (x @ y) / np.sqrt((x @ x) * (y @ y))
    return float(np.clip(correlation, -1.0, 1.0))  # rounding can step just past +-1


def _label_counts(predicted, targets):
    """Per-label tp, fp, fn of boolean [n, L] predictions against boolean targets."""
    tp = np.sum(predicted & targets, axis=0)
    fp = np.sum(predicted & ~targets, axis=0)
    fn = np.sum(~predicted & targets, axis=0)
    return tp, fp, fn


def _binary_cross_entropy(logits, targets):
    # -[y log s(x) + (1-y) log(1-s(x))] rewritten so that exp never sees a positive number.
    return np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))


# --- input checks ---------------------------------------------------------------------------


def _as_matrix(values, name):
    values = np.asarray(values, "float64")
    if values.ndim != 2 or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty [n, K] array, got shape {values.shape}")
    return values


def _as_vector(values, name):
    values = np.asarray(values, "float64")
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]  # a regression head's [n, 1] output
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty [n] or [n, 1] array, not {values.shape}")
    if not np.all(np.isfinite(values)):
        # NaN would make Pearson NaN but be silently ranked last by Spearman.
        raise ValueError(f"{name} contains NaN or infinite values")
    return values


def _check_classification_inputs(logits, labels, num_classes):
    if logits.shape[1] != num_classes:
        raise ValueError(f"logits have {logits.shape[1]} columns for {num_classes} classes")
    if labels.shape != (len(logits),):
        raise ValueError(f"labels {labels.shape} must be [n] for logits {logits.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer class ids, got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}), "
                         f"got {labels.min()}..{labels.max()}")


def _as_binary_targets(targets, shape):
    targets = np.asarray(targets)
    if targets.shape != shape:
        raise ValueError(f"targets {targets.shape} must match {shape}")
    if not np.all((targets == 0) | (targets == 1)):
        raise ValueError("multi-label targets must be 0 or 1")
    return targets.astype(bool)


def _per_label_thresholds(thresholds, num_labels):
    thresholds = np.asarray(thresholds, "float64")
    if thresholds.ndim == 0:
        return np.full(num_labels, float(thresholds))
    if thresholds.shape != (num_labels,):
        raise ValueError(f"need one threshold or {num_labels}, got shape {thresholds.shape}")
    return thresholds
