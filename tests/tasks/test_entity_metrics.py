"""Entity-level scores against counts worked out by hand (the arithmetic is in the comments)."""

import warnings

import pytest

from keras_mapping.tasks.entity_metrics import entity_scores


def test_a_perfect_prediction():
    truth = [["B-PER", "I-PER", "O", "B-LOC"], ["O"], ["B-ORG"]]
    result = entity_scores(truth, truth)
    assert (result["precision"], result["recall"], result["f1"]) == (1.0, 1.0, 1.0)
    assert result["token_accuracy"] == 1.0
    assert (result["true_entities"], result["predicted_entities"],
            result["correct_entities"]) == (3, 3, 3)


def test_a_boundary_error_is_one_false_positive_and_one_false_negative():
    # True ORG(0, 3), predicted ORG(0, 2): no correct entity, one of each side.
    result = entity_scores([["B-ORG", "I-ORG", "I-ORG"]], [["B-ORG", "I-ORG", "O"]])
    assert (result["true_entities"], result["predicted_entities"],
            result["correct_entities"]) == (1, 1, 0)
    assert (result["precision"], result["recall"], result["f1"]) == (0.0, 0.0, 0.0)
    assert result["token_accuracy"] == pytest.approx(2 / 3)


def test_a_type_error_counts_against_both_types():
    result = entity_scores([["B-PER", "O"]], [["B-LOC", "O"]])
    assert result["correct_entities"] == 0
    assert result["per_type"] == {
        "LOC": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
        "PER": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}}


def test_a_predicted_i_tag_after_o_starts_an_entity_as_in_conlleval():
    result = entity_scores([["O", "B-PER", "I-PER"]], [["O", "I-PER", "I-PER"]])
    assert result["f1"] == 1.0
    assert result["token_accuracy"] == pytest.approx(2 / 3)  # tags compared as given
    # Two I- tags of different types are two entities, neither matching B-PER I-PER.
    result = entity_scores([["B-PER", "I-PER"]], [["I-PER", "I-LOC"]])
    assert (result["predicted_entities"], result["correct_entities"]) == (2, 0)


def test_per_type_support_counts_true_entities():
    truth = [["B-PER", "O", "B-PER", "B-LOC"], ["B-PER", "I-PER"]]
    prediction = [["B-PER", "O", "O", "B-LOC"], ["O", "O"]]
    per_type = entity_scores(truth, prediction)["per_type"]
    assert list(per_type) == ["LOC", "PER"]
    assert per_type["PER"] == {"precision": 1.0, "recall": pytest.approx(1 / 3),
                               "f1": 0.5, "support": 3}  # 2 * 1 / (1 + 3)
    assert per_type["LOC"]["support"] == 1


def test_empty_predictions_and_empty_data_score_zero_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = entity_scores([["B-PER", "O"]], [["O", "O"]])
        assert (result["precision"], result["recall"], result["f1"]) == (0.0, 0.0, 0.0)
        assert result["token_accuracy"] == 0.5
        empty = entity_scores([], [])
        assert (empty["f1"], empty["token_accuracy"], empty["per_type"]) == (0.0, 0.0, {})
        no_entities = entity_scores([["O"]], [["O"]])
        assert (no_entities["precision"], no_entities["token_accuracy"]) == (0.0, 1.0)


def test_mismatched_sentences_name_the_index():
    with pytest.raises(ValueError, match="2 true sentences but 1 predicted"):
        entity_scores([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="sentence 1: 2 true tags but 1 predicted"):
        entity_scores([["O"], ["O", "O"]], [["O"], ["O"]])


def test_several_sentences_worked_by_hand():
    truth = [["B-PER", "I-PER", "O", "B-LOC"],   # PER(0,2) LOC(3,4)
             ["B-ORG", "I-ORG", "I-ORG", "O"],   # ORG(0,3)
             ["B-MISC", "O", "B-PER"],           # MISC(0,1) PER(2,3)
             ["O", "O"]]
    prediction = [["B-PER", "I-PER", "O", "B-LOC"],  # both correct
                  ["B-ORG", "I-ORG", "O", "O"],      # ORG(0,2): wrong end
                  ["B-LOC", "O", "I-PER"],           # LOC(0,1) wrong type; PER(2,3) correct
                  ["B-PER", "O"]]                    # PER(0,1): spurious
    result = entity_scores(truth, prediction)
    # 5 true, 6 predicted, 3 correct (PER(0,2), LOC(3,4), PER(2,3)).
    assert (result["true_entities"], result["predicted_entities"],
            result["correct_entities"]) == (5, 6, 3)
    assert result["precision"] == pytest.approx(3 / 6)
    assert result["recall"] == pytest.approx(3 / 5)
    assert result["f1"] == pytest.approx(6 / 11)  # 2 * 3 / (6 + 5)
    # Same tags: 4 + 3 + 1 + 1 of 4 + 4 + 3 + 2 words.
    assert result["token_accuracy"] == pytest.approx(9 / 13)
    per_type = result["per_type"]
    assert per_type["PER"] == pytest.approx(  # 2 true, 3 predicted, 2 correct
        {"precision": 2 / 3, "recall": 1.0, "f1": 4 / 5, "support": 2})
    assert per_type["LOC"] == pytest.approx(  # 1 true, 2 predicted, 1 correct
        {"precision": 1 / 2, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert per_type["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert per_type["MISC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert all(isinstance(result[key], float) for key in ("precision", "recall", "f1"))
