"""Entities from tagged words: what `predict` prints for a token-classification model, and
how a client groups the per-piece outputs of its exported SavedModel the same way. No
TensorFlow here, so that serving clients can use it with NumPy alone."""

import numpy as np

from keras_mapping.data.tag_schemes import entity_spans, to_iob2


def entities_of_words(text, word_tags, word_scores, word_spans):
    """`[{"type", "text", "start", "end", "score"}]` of one text: its words' IOB2 tags read
    as conlleval reads them (an `I-X` after `O` starts an entity), each entity spanning its
    first word's start to its last word's end in `text`, scored by the mean of its words'
    tag probabilities.

    Example:
    >>> text = "Ada Lovelace met  Babbage."
    >>> spans = [(0, 3), (4, 12), (13, 16), (18, 25), (25, 26)]
    >>> found = entities_of_words(text, ["B-PER", "I-PER", "O", "I-PER", "O"],
    ...                           [0.9, 0.7, 0.99, 0.6, 0.99], spans)
    >>> [(e["type"], e["text"], e["start"], e["end"], e["score"]) for e in found]
    [('PER', 'Ada Lovelace', 0, 12, 0.8), ('PER', 'Babbage', 18, 25, 0.6)]
    """
    found = []
    for kind, first, last in entity_spans(to_iob2(list(word_tags), "iob2")):
        start, end = int(word_spans[first][0]), int(word_spans[last - 1][1])
        found.append({"type": kind, "text": text[start:end], "start": start, "end": end,
                      "score": round(float(np.mean(word_scores[first:last])), 4)})
    return found


def word_spans_of_pieces(word_ids, starts, ends):
    """`(start, end)` of each word, from the character offsets of its pieces."""
    spans = {}
    for word, start, end in zip(word_ids, starts, ends):
        spans[word] = (spans.get(word, (start, end))[0], end)
    return [spans[word] for word in sorted(spans)]


def served_entities(text, outputs):
    """The entities of one text from its row of a token-classification SavedModel's outputs
    (NumPy arrays or lists, as `serving_default` returns them for that text).

    Example:
    >>> outputs = {"tag": [b"B-LOC", b"I-LOC", b"O", b""], "score": [0.9, 0.5, 1.0, 0.0],
    ...            "word_id": [0, 0, 1, -1], "first_piece": [True, False, True, False],
    ...            "start": [0, 3, 6, 0], "end": [3, 5, 7, 0],
    ...            "piece_mask": [True, True, True, False]}
    >>> served_entities("Paris !", outputs)
    [{'type': 'LOC', 'text': 'Paris', 'start': 0, 'end': 5, 'score': 0.9}]
    """
    mask = np.asarray(outputs["piece_mask"], bool)
    first = np.asarray(outputs["first_piece"], bool) & mask
    tags = [tag.decode() if isinstance(tag, bytes) else str(tag)
            for tag in np.asarray(outputs["tag"], object)[first]]
    spans = word_spans_of_pieces(np.asarray(outputs["word_id"])[mask],
                                 np.asarray(outputs["start"])[mask],
                                 np.asarray(outputs["end"])[mask])
    return entities_of_words(text, tags, np.asarray(outputs["score"], "float64")[first], spans)
