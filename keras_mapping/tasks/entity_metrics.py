"""Entity-level precision, recall and F1 of tagged sentences, as conlleval and seqeval score
CoNLL named-entity recognition.

An entity is a `(type, start, end)` span of words (see `tag_schemes.entity_spans`). A predicted
entity is correct only if a true entity has the same type, start and end: a right type with a
wrong boundary counts as one false positive and one false negative. Returns plain Python
numbers (fractions in [0, 1], as `metrics.classification_metrics` reports accuracy), ready
for JSON.
"""

from collections import Counter

from keras_mapping.data.tag_schemes import entity_spans


def _ratio(numerator, denominator):
    return numerator / denominator if denominator else 0.0


def _scores(correct, predicted, true):
    """Precision, recall and F1 from counts; 0.0 wherever a denominator is 0."""
    return {"precision": _ratio(correct, predicted), "recall": _ratio(correct, true),
            "f1": _ratio(2 * correct, predicted + true)}


def _checked_pairs(true_tags, predicted_tags):
    true_tags, predicted_tags = list(true_tags), list(predicted_tags)
    if len(true_tags) != len(predicted_tags):
        raise ValueError(f"{len(true_tags)} true sentences but {len(predicted_tags)} predicted")
    for index, (truth, prediction) in enumerate(zip(true_tags, predicted_tags)):
        if len(truth) != len(prediction):
            raise ValueError(f"sentence {index}: {len(truth)} true tags but {len(prediction)} "
                             "predicted")
    return list(zip(true_tags, predicted_tags))


def entity_scores(true_tags, predicted_tags):
    """Entity-level precision, recall and F1 (micro over all entities) and per entity type.

    Both sides are read as conlleval reads IOB2: an I- tag that continues no entity of its
    type (e.g. after "O") starts one. `token_accuracy` compares the tags as given, word by
    word, as conlleval's accuracy does.

    Args:
        true_tags: a list of sentences, each a list of IOB2 tags.
        predicted_tags: the predicted IOB2 tags, sentence for sentence and word for word.

    Returns:
        dict with `precision`, `recall`, `f1`, `token_accuracy` (fractions, 0.0 when
        undefined), `per_type` (`{type: {precision, recall, f1, support}}` for every type that
        is true or predicted, support = its number of true entities), and the counts
        `true_entities`, `predicted_entities`, `correct_entities`.

    Raises:
        ValueError: the numbers of sentences, or of tags in a sentence, differ (the message
            names the sentence index); a malformed tag (`TagError`).

    Example:
    >>> truth = [["B-PER", "I-PER", "O", "B-LOC"]]
    >>> result = entity_scores(truth, [["B-PER", "I-PER", "O", "O"]])
    >>> result["precision"], result["recall"], round(result["f1"], 4), result["token_accuracy"]
    (1.0, 0.5, 0.6667, 0.75)
    >>> result["per_type"]["LOC"]
    {'precision': 0.0, 'recall': 0.0, 'f1': 0.0, 'support': 1}
    """
    true_counts, predicted_counts, correct_counts = Counter(), Counter(), Counter()
    matching_tags = total_tags = 0
    for truth, prediction in _checked_pairs(true_tags, predicted_tags):
        true_spans, predicted_spans = set(entity_spans(truth)), set(entity_spans(prediction))
        true_counts.update(span[0] for span in true_spans)
        predicted_counts.update(span[0] for span in predicted_spans)
        correct_counts.update(span[0] for span in true_spans & predicted_spans)
        matching_tags += sum(a == b for a, b in zip(truth, prediction))
        total_tags += len(truth)
    per_type = {entity_type: {**_scores(correct_counts[entity_type],
                                        predicted_counts[entity_type], true_counts[entity_type]),
                              "support": true_counts[entity_type]}
                for entity_type in sorted(true_counts | predicted_counts)}
    correct, predicted, true = (sum(counts.values()) for counts in
                                (correct_counts, predicted_counts, true_counts))
    return {**_scores(correct, predicted, true),
            "token_accuracy": _ratio(matching_tags, total_tags),
            "per_type": per_type,
            "true_entities": true, "predicted_entities": predicted, "correct_entities": correct}
