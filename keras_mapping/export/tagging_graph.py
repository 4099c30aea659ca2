"""Token classification inside a TensorFlow graph: raw text to per-piece tags with character
offsets, with texts longer than the model cut into the same windows as `predict` uses
(`keras_mapping.data.tagging`): each piece's logits come from the one window that gives it
the most context, so a long text is tagged whole and each piece exactly once.
"""

import tensorflow as tf


def _windows(lengths, capacity, stride):
    """`(rows, starts, ends, numbers)` of every window of every text: the text it cuts, its
    first and past-the-end pieces and its index within the text (as `window_spans`)."""
    extra = tf.maximum(lengths - capacity, 0)
    counts = 1 + (extra + stride - 1) // stride
    rows = tf.repeat(tf.range(tf.size(lengths)), counts)
    numbers = tf.ragged.range(counts).flat_values
    starts = numbers * stride
    ends = tf.minimum(starts + capacity, tf.gather(lengths, rows))
    return rows, starts, ends, numbers


def _model_inputs(window_ids, sizes, cls_id, sep_id):
    """`[CLS] pieces [SEP]` rows padded to the longest window, as the model's inputs."""
    count = tf.shape(window_ids)[0]
    token_ids = tf.concat([tf.fill([count, 1], cls_id), window_ids,
                           tf.zeros([count, 1], tf.int32)], axis=1)
    token_ids = tf.tensor_scatter_nd_update(
        token_ids, tf.stack([tf.range(count), sizes + 1], axis=1), tf.fill([count], sep_id))
    length = tf.reduce_max(sizes) + 2
    token_ids = token_ids[:, :length]
    return {"token_ids": token_ids, "segment_ids": tf.zeros_like(token_ids),
            "padding_mask": tf.sequence_mask(sizes + 2, length)}


def window_logits(model, token_ids, capacity, stride, cls_id, sep_id):
    """Logits `[texts, longest text's pieces, tags]` of a ragged batch of piece ids (no
    `[CLS]`/`[SEP]`), each piece from the window that gives it the most context."""
    lengths = tf.cast(token_ids.row_lengths(), tf.int32)
    # One spare column, so that gathers stay in range when every text is empty.
    dense = tf.pad(token_ids.to_tensor(), [[0, 0], [0, 1]])
    width = tf.shape(dense)[1]
    rows, starts, ends, numbers = _windows(lengths, capacity, stride)
    sizes = ends - starts
    span = tf.reduce_max(sizes)
    offsets = tf.range(span)
    positions = starts[:, None] + offsets[None, :]
    valid = offsets[None, :] < sizes[:, None]
    gather_at = tf.stack([tf.broadcast_to(rows[:, None], tf.shape(positions)),
                          tf.minimum(positions, width - 1)], axis=-1)
    window_ids = tf.where(valid, tf.gather_nd(dense, gather_at), 0)
    logits = model(_model_inputs(window_ids, sizes, cls_id, sep_id), training=False)
    logits = tf.cast(logits, tf.float32)[:, 1:span + 1]
    # The owner of a piece: most context (the nearer window edge farthest away), then the
    # earlier window, as `window_owners` decides.
    most = tf.reduce_max(numbers) + 1
    context = tf.minimum(positions - starts[:, None], ends[:, None] - 1 - positions)
    score = tf.where(valid, context * (most + 1) + (most - numbers[:, None]), -1)
    slots = rows[:, None] * width + tf.minimum(positions, width - 1)
    best = tf.math.unsorted_segment_max(tf.reshape(score, [-1]), tf.reshape(slots, [-1]),
                                        tf.size(lengths) * width)
    chosen = valid & tf.equal(score, tf.gather(best, slots))
    tags = tf.shape(logits)[-1]
    flat = tf.scatter_nd(tf.boolean_mask(slots, chosen)[:, None],
                         tf.boolean_mask(logits, chosen),
                         tf.stack([tf.size(lengths) * width, tags]))
    return tf.reshape(flat, [tf.size(lengths), width, tags])[:, :width - 1]


def tag_pieces(model, tokenizer, text, max_length, stride, tag_names):
    """What a token-classification SavedModel returns for a batch of texts: per piece (padded
    to the longest text), its `tag` and `tag_id` ("" and -1 at padding), `score` (the tag's
    probability), `probabilities`, `start`/`end` character offsets into the text, `word_id`
    (the tokenizer's word, -1 at padding), `first_piece` (the piece starts its word: read a
    word's tag there) and `piece_mask`."""
    pieces = tokenizer.tokenize_with_offsets(text)
    capacity = max_length - 2
    logits = window_logits(model, pieces["token_ids"], capacity,
                           stride or max(1, capacity // 2),
                           tokenizer.cls_token_id, tokenizer.sep_token_id)
    probabilities = tf.nn.softmax(logits, axis=-1)
    mask = tf.sequence_mask(pieces["token_ids"].row_lengths(), tf.shape(logits)[1])
    tag_id = tf.where(mask, tf.argmax(logits, axis=-1, output_type=tf.int32), -1)
    word_id = tf.cast(pieces["word_ids"].to_tensor(-1), tf.int32)
    previous = tf.pad(word_id[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
    return {"tag": tf.where(mask, tf.gather(tag_names, tf.maximum(tag_id, 0)), ""),
            "tag_id": tag_id, "score": tf.reduce_max(probabilities, axis=-1) * tf.cast(
                mask, tf.float32),
            "probabilities": probabilities,
            "start": tf.cast(pieces["start"].to_tensor(0), tf.int32),
            "end": tf.cast(pieces["end"].to_tensor(0), tf.int32),
            "word_id": word_id, "first_piece": mask & tf.not_equal(word_id, previous),
            "piece_mask": mask}
