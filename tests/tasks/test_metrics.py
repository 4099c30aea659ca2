"""Task metrics against values worked out by hand (the arithmetic is in the comments)."""

import math

import numpy as np
import pytest

from keras_mapping.tasks.metrics import (average_ranks, classification_metrics,
                                         multi_label_metrics, regression_metrics, sigmoid,
                                         softmax, tune_thresholds)

# An overflowing exp (or inf - inf) raises; underflow to 0 is the expected, harmless limit.
NO_OVERFLOW = dict(over="raise", invalid="raise", divide="raise")


def one_hot_logits(predictions, num_classes, scale=2.0):
    """Logits whose argmax is `predictions`: `scale` on the predicted class, 0 elsewhere."""
    return scale * np.eye(num_classes)[np.asarray(predictions)]


def logit(probability):
    return np.log(probability / (1.0 - probability))


# --- helpers --------------------------------------------------------------------------------


def test_sigmoid_is_exact_at_zero_and_stable_far_out():
    with np.errstate(**NO_OVERFLOW):
        values = sigmoid(np.array([-1000.0, -1.0, 0.0, 1.0, 1000.0]))
    # 1 / (1 + e^1) = 0.268941..., and sigmoid(-x) = 1 - sigmoid(x)
    np.testing.assert_allclose(values, [0.0, 1 / (1 + math.e), 0.5, 1 / (1 + math.exp(-1)), 1.0])


def test_softmax_rows_and_large_logits():
    with np.errstate(**NO_OVERFLOW):
        probabilities = softmax(np.array([[0.0, np.log(3.0)], [1000.0, 1000.0], [1.0, 2.0]]))
    # [1, 3] / 4; equal logits share evenly; [e, e^2] / (e + e^2)
    total = math.e + math.e**2
    expected = [[0.25, 0.75], [0.5, 0.5], [math.e / total, math.e**2 / total]]
    np.testing.assert_allclose(probabilities, expected)


def test_average_ranks_with_ties():
    # [1, 2, 2, 3]: the two 2s share ranks 2 and 3 -> 2.5
    assert average_ranks([1, 2, 2, 3]).tolist() == [1.0, 2.5, 2.5, 4.0]
    # sorted 1 (rank 1), 2 (rank 2), 3, 3, 3 (ranks 3, 4, 5 -> 4)
    assert average_ranks([3, 1, 3, 3, 2]).tolist() == [4.0, 1.0, 4.0, 4.0, 2.0]
    assert average_ranks([5.0]).tolist() == [1.0]


# --- classification -------------------------------------------------------------------------


def binary_example():
    """tp=3, fn=2 (label 1), fp=1, tn=4 (label 0)."""
    labels = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    predictions = np.array([1, 1, 1, 0, 0, 1, 0, 0, 0, 0])
    return one_hot_logits(predictions, 2), labels


def test_binary_classification_by_hand():
    logits, labels = binary_example()
    result = classification_metrics(logits, labels, num_classes=2)
    assert result["num_examples"] == 10
    assert result["confusion_matrix"] == [[4, 1], [2, 3]]  # rows: true 0 (tn, fp), true 1 (fn, tp)
    assert result["accuracy"] == pytest.approx(0.7)  # (3 + 4) / 10
    # F1 of the positive class: 2*3 / (2*3 + 1 + 2) = 6/9
    assert result["f1"] == pytest.approx(6 / 9)
    # class 0 has tp=4, fp=2, fn=1: 8 / (8 + 2 + 1) = 8/11; macro = (8/11 + 6/9) / 2
    assert result["macro_f1"] == pytest.approx((8 / 11 + 6 / 9) / 2)
    # MCC = (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (12 - 2) / sqrt(4*5*5*6)
    assert result["mcc"] == pytest.approx(10 / math.sqrt(4 * 5 * 5 * 6))
    # logits are (2, 0): a right row costs log(1 + e^-2), a wrong row log(1 + e^2); 7 right, 3 wrong
    expected_loss = (7 * math.log1p(math.exp(-2)) + 3 * math.log1p(math.exp(2))) / 10
    assert result["loss"] == pytest.approx(expected_loss)


def test_three_class_mcc_and_macro_f1_by_hand():
    # confusion matrix (rows true, columns predicted):
    #   [[3, 1, 0],
    #    [0, 2, 2],
    #    [1, 0, 1]]
    pairs = [(0, 0)] * 3 + [(0, 1)] + [(1, 1)] * 2 + [(1, 2)] * 2 + [(2, 0)] + [(2, 2)]
    labels, predictions = (np.array(column) for column in zip(*pairs))
    result = classification_metrics(one_hot_logits(predictions, 3), labels, num_classes=3)
    assert result["confusion_matrix"] == [[3, 1, 0], [0, 2, 2], [1, 0, 1]]
    assert result["accuracy"] == pytest.approx(0.6)  # trace 6 of 10
    # Gorodkin: c=6, s=10, true counts t=(4, 4, 2), predicted counts p=(4, 3, 3)
    # t.p = 16 + 12 + 6 = 34, p.p = 16 + 9 + 9 = 34, t.t = 16 + 16 + 4 = 36
    # R_K = (6*10 - 34) / sqrt((100 - 34) * (100 - 36)) = 26 / sqrt(66 * 64) = 0.40005
    assert result["mcc"] == pytest.approx(26 / math.sqrt(66 * 64))
    # per class 2tp / (2tp + fp + fn): class 0: 6/(6+1+1); class 1: 4/(4+1+2); class 2: 2/(2+2+1)
    macro = (6 / 8 + 4 / 7 + 2 / 5) / 3
    assert result["macro_f1"] == pytest.approx(macro)
    assert result["f1"] == pytest.approx(macro)  # more than 2 classes: f1 is the macro F1


def test_class_absent_from_labels_and_predictions_counts_zero_in_macro_f1():
    labels = np.array([0, 1, 0, 1])
    result = classification_metrics(one_hot_logits(labels, 3), labels, num_classes=3)
    assert result["accuracy"] == 1.0
    assert result["macro_f1"] == pytest.approx(2 / 3)  # (1 + 1 + 0) / 3
    # c=4, s=4, t=p=(2, 2, 0): (16 - 8) / sqrt((16 - 8) * (16 - 8)) = 1
    assert result["mcc"] == pytest.approx(1.0)


def test_mcc_is_zero_when_every_prediction_is_one_class():
    labels = np.array([0, 1, 1, 0, 1])
    result = classification_metrics(one_hot_logits(np.ones(5, int), 2), labels, num_classes=2)
    # p = (0, 5): s^2 - p.p = 25 - 25 = 0, so the denominator is 0 -> 0.0 (as sklearn)
    assert result["mcc"] == 0.0
    assert result["f1"] == pytest.approx(6 / 8)  # tp=3, fp=2, fn=0: 6 / (6 + 2)


def test_classification_loss_against_the_direct_formula():
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, 0.0]])
    labels = np.array([0, 1])
    result = classification_metrics(logits, labels, num_classes=3)
    # -log softmax: log(e + e^2 + e^3) - 1, and 1000 - 0 (+ log(1 + 2e^-1000) ~ 0) for row 2
    first = math.log(math.e + math.e**2 + math.e**3) - 1.0
    assert result["loss"] == pytest.approx((first + 1000.0) / 2)


def test_classification_rejects_bad_labels():
    logits = one_hot_logits([0, 1], 2)
    with pytest.raises(ValueError, match="lie in"):
        classification_metrics(logits, np.array([0, 2]), num_classes=2)
    with pytest.raises(ValueError, match="columns"):
        classification_metrics(logits, np.array([0, 1]), num_classes=3)


# --- regression -----------------------------------------------------------------------------


def test_regression_by_hand():
    result = regression_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 4.0, 5.0, 9.0]))
    # centred x = (-1.5, -0.5, 0.5, 1.5), y = (-3, -1, 0, 4) around mean 5
    # x.y = 4.5 + 0.5 + 0 + 6 = 11, x.x = 5, y.y = 9 + 1 + 0 + 16 = 26
    assert result["pearson"] == pytest.approx(100 * 11 / math.sqrt(5 * 26))
    assert result["spearman"] == pytest.approx(100.0)  # same order
    assert result["mse"] == pytest.approx((1 + 4 + 4 + 25) / 4)
    assert result["num_examples"] == 4


def test_spearman_with_tied_targets():
    # predictions ranks (1, 2, 3, 4); targets [1, 2, 2, 3] -> ranks (1, 2.5, 2.5, 4)
    # centred (-1.5, -0.5, 0.5, 1.5) and (-1.5, 0, 0, 1.5): 4.5 / sqrt(5 * 4.5)
    result = regression_metrics(np.array([1.0, 2.0, 3.0, 10.0]), np.array([1.0, 2.0, 2.0, 3.0]))
    assert result["spearman"] == pytest.approx(100 * 4.5 / math.sqrt(5 * 4.5))
    assert result["pearson"] != pytest.approx(result["spearman"])  # 10 is far: not a rank


def test_perfect_and_anti_correlated():
    x = np.array([0.5, 1.0, 3.0, 7.0])
    perfect = regression_metrics(2 * x + 1, x)
    assert perfect["pearson"] == pytest.approx(100.0)
    assert perfect["spearman"] == pytest.approx(100.0)
    anti = regression_metrics(-x, x)
    assert anti["pearson"] == pytest.approx(-100.0)
    assert anti["spearman"] == pytest.approx(-100.0)


def test_constant_inputs_give_zero_correlation_not_nan():
    varied = np.array([1.0, 2.0, 3.0])
    for constant in (np.full(3, 0.1), np.full(3, 7.0)):  # 0.1: its mean is not exactly 0.1
        for result in (regression_metrics(constant, varied), regression_metrics(varied, constant)):
            assert result["pearson"] == 0.0
            assert result["spearman"] == 0.0


def test_predictions_of_shape_n_by_one():
    flat = regression_metrics(np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0, 3.0]))
    column = regression_metrics(np.array([[1.0], [2.0], [4.0]]), np.array([1.0, 2.0, 3.0]))
    assert column == flat


def test_regression_rejects_mismatched_or_nan_inputs():
    with pytest.raises(ValueError, match="differ"):
        regression_metrics(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        regression_metrics(np.array([1.0, np.nan]), np.array([1.0, 2.0]))


def test_pearson_matches_corrcoef_on_random_data():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(3, 200))
        x = rng.normal(size=n)
        y = 0.5 * x + rng.normal(size=n) * rng.uniform(0.1, 3.0)
        result = regression_metrics(x, y)
        assert result["pearson"] == pytest.approx(100 * np.corrcoef(x, y)[0, 1], abs=1e-9)
        # no ties in continuous data: Spearman is corrcoef of the argsort-of-argsort ranks
        rank_x, rank_y = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
        expected = 100 * np.corrcoef(rank_x, rank_y)[0, 1]
        assert result["spearman"] == pytest.approx(expected, abs=1e-9)


# --- multi-label ----------------------------------------------------------------------------


MULTI_TARGETS = np.array([[1, 0, 1],
                          [0, 1, 0],
                          [1, 1, 0]])
MULTI_PREDICTIONS = np.array([[1, 0, 0],
                              [0, 1, 0],
                              [1, 0, 1]])


def test_multi_label_micro_and_macro_f1_differ():
    logits = np.where(MULTI_PREDICTIONS == 1, 2.0, -2.0)  # sigmoid(+-2) = 0.88 / 0.12
    result = multi_label_metrics(logits, MULTI_TARGETS)
    # label 0: tp=2, fp=0, fn=0 -> 1; label 1: tp=1, fn=1 -> 2/3; label 2: fp=1, fn=1 -> 0
    assert result["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    # pooled tp=3, fp=1, fn=2: 6 / (6 + 1 + 2)
    assert result["micro_f1"] == pytest.approx(6 / 9)
    assert result["exact_match"] == pytest.approx(1 / 3)  # only the middle row is all right
    assert result["num_examples"] == 3
    assert result["thresholds"] == [0.5, 0.5, 0.5]
    # 6 right entries cost log(1 + e^-2) each, 3 wrong ones log(1 + e^2)
    expected_loss = (6 * math.log1p(math.exp(-2)) + 3 * math.log1p(math.exp(2))) / 9
    assert result["loss"] == pytest.approx(expected_loss)


def test_multi_label_loss_against_the_direct_formula():
    result = multi_label_metrics(np.array([[0.0, 2.0, -1.0]]), np.array([[1, 0, 1]]))
    # -log s(0) = log 2; -log(1 - s(2)) = log(1 + e^2); -log s(-1) = log(1 + e)
    expected = (math.log(2) + math.log1p(math.exp(2)) + math.log1p(math.e)) / 3
    assert result["loss"] == pytest.approx(expected)
    with np.errstate(**NO_OVERFLOW):
        far = multi_label_metrics(np.array([[1000.0, -1000.0]]), np.array([[0, 0]]))
    assert far["loss"] == pytest.approx(1000.0 / 2)  # 1000 for the wrong entry, ~0 for the other


def test_label_without_positives_or_predictions_counts_zero_in_macro_f1():
    result = multi_label_metrics(np.array([[2.0, -2.0], [-2.0, -2.0]]), np.array([[1, 0], [0, 0]]))
    assert result["micro_f1"] == 1.0  # tp=1, nothing else
    assert result["macro_f1"] == 0.5  # (1 + 0) / 2: label 1 scores 0, not 1 (zero_division=0)
    assert result["exact_match"] == 1.0


def test_per_label_thresholds_are_applied():
    logits = logit(np.array([[0.6, 0.6], [0.3, 0.3]]))
    targets = np.array([[1, 0], [1, 0]])
    at_half = multi_label_metrics(logits, targets)
    # label 0 predicts (1, 0) -> 2/3; label 1 predicts (1, 0) with no positives -> 0
    assert at_half["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)
    assert at_half["exact_match"] == 0.0
    tuned = multi_label_metrics(logits, targets, thresholds=[0.25, 0.7])
    # label 0 predicts (1, 1) -> tp=2 -> 1; label 1 predicts nothing -> every row right
    assert tuned["micro_f1"] == 1.0
    assert tuned["exact_match"] == 1.0
    assert tuned["thresholds"] == [0.25, 0.7]
    with pytest.raises(ValueError, match="threshold"):
        multi_label_metrics(logits, targets, thresholds=[0.5, 0.5, 0.5])


def test_tune_thresholds_picks_the_known_best():
    probabilities = np.array([[0.9, 0.35, 0.9],
                              [0.8, 0.25, 0.1],
                              [0.7, 0.15, 0.6],
                              [0.3, 0.05, 0.2]])
    targets = np.array([[1, 1, 0],
                        [1, 1, 0],
                        [0, 0, 0],
                        [0, 0, 0]])
    # label 0: F1 = 1 only for thresholds in (0.7, 0.8] -> 0.75 or 0.8; 0.75 is nearer 0.5
    # label 1: F1 = 1 only in (0.15, 0.25] -> 0.2 or 0.25; 0.25 is nearer 0.5
    # label 2: no positives, F1 = 0 everywhere -> keeps 0.5
    assert tune_thresholds(probabilities, targets) == [0.75, 0.25, 0.5]


def test_tune_thresholds_ties_go_to_the_candidate_nearest_half():
    probabilities = np.array([[0.9], [0.8], [0.7], [0.3]])
    targets = np.array([[1], [1], [0], [0]])
    # 0.1 and 0.3 predict all four: tp=2, fp=2 -> 4/6; 0.9 predicts one: tp=1, fn=1 -> 2/3
    assert tune_thresholds(probabilities, targets, candidates=[0.1, 0.3, 0.9]) == [0.3]
    # 0.45 and 0.55 are equally near 0.5 (up to float error): the smaller one wins
    assert tune_thresholds(probabilities, np.zeros((4, 1)), candidates=[0.55, 0.45]) == [0.45]
