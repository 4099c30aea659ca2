"""BERT input packing in dense ops: what `BertPacker` runs, and what converts to TFLite.

Trimming and combining ragged tensors (tensorflow-text's trimmers and `combine_segments`,
then `to_tensor`) traces into 500-900 graph nodes, which every new tf.data iterator over a
packing pipeline instantiated again, 0.09-0.14 s each time (each `fit`, `evaluate` and
`predict` makes one or more); slicing a ragged tensor also needs `RaggedRange`, which
TFLite lacks. Here the word pieces are made dense once, each segment's kept length is
computed per row, and every output position then looks up what it holds -- `[CLS]`, a
piece of A or B, `[SEP]` or padding -- by comparisons, `tf.where` and a batched gather: 90
nodes for one segment, 180 for a pair, all TFLite builtins.
"""

import tensorflow as tf

TRUNCATIONS = ("round_robin", "longest_first", "waterfall")


def _kept_lengths(lengths, room, truncate):
    """How many pieces of each segment stay, on int32 row lengths (`room` None: all).

    For a pair: `"round_robin"` hands out the room one piece at a time, A first, to the
    segments not yet complete, so A gets the odd piece; `"longest_first"` (Hugging Face's
    rule) is the same except that the odd piece goes to the longer segment (B on a tie);
    `"waterfall"` fills A first and gives B what is left."""
    if room is None:
        return list(lengths)
    if len(lengths) == 1:
        return [tf.minimum(lengths[0], room)]
    first_length, second_length = lengths
    if truncate == "waterfall":
        first_keeps = tf.minimum(first_length, room)
    elif truncate == "round_robin":
        # A keeps its half of the room, rounded up, or more when B needs less than the rest.
        first_keeps = tf.minimum(first_length, tf.maximum(room - room // 2, room - second_length))
    else:
        # The shorter segment keeps all it has while that is at most half the room.
        shorter = tf.minimum(first_length, second_length)
        shorter_keeps = tf.where(2 * shorter <= room, shorter, room // 2)
        first_keeps = tf.minimum(first_length, tf.where(
            first_length <= second_length, shorter_keeps, room - shorter_keeps))
    return [first_keeps, tf.minimum(second_length, room - first_keeps)]


def _pieces_at(dense, index, pad_token_id):
    """`dense[row, index[row, position]]` for any index; out-of-range ones give junk that
    the caller masks out."""
    # One padding column, so that the gather has something to read even when every row of
    # the segment is empty (a [batch, 0] tensor), and clipping keeps indices in range.
    dense = tf.concat([dense, tf.fill([tf.shape(dense)[0], 1], pad_token_id)], axis=1)
    index = tf.clip_by_value(index, 0, tf.shape(dense)[1] - 1)
    return tf.gather(dense, index, batch_dims=1)


def pack_dense(segments, max_length, cls_token_id, sep_token_id, pad_token_id,
               truncate="longest_first", pad_to_longest=True):
    """Packs one segment or a pair of word-piece ids into BERT's inputs, in dense ops.

    Args:
        segments: a tuple of one or two `tf.RaggedTensor`s of int32 ids, each
            `[batch, (pieces)]` (as `FastWordpieceTokenizer.tokenize` returns for a batch).
        max_length: longest output row, special tokens included (at least 2 for one
            segment, 3 for a pair), or None: nothing is cut.
        cls_token_id: id of `[CLS]`.
        sep_token_id: id of `[SEP]`.
        pad_token_id: id of `[PAD]`.
        truncate: how a pair shares the room, one of `TRUNCATIONS` (see `_kept_lengths`).
        pad_to_longest: rows as wide as the batch's longest packed row; else `max_length`
            wide (always the former when `max_length` is None).

    Returns:
        A dict of `token_ids` (int32), `segment_ids` (int32, 1 on B and its `[SEP]`) and
        `padding_mask` (bool, True on real tokens), each `[batch, width]`, the rows
        `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`.
    """
    if len(segments) not in (1, 2):
        raise ValueError(f"pack_dense takes one segment or a pair; got {len(segments)}.")
    room = None if max_length is None else max_length - 1 - len(segments)
    if room is not None and room < 0:
        raise ValueError(
            f"max_length={max_length} leaves no room for the {len(segments) + 1} special "
            f"tokens of {len(segments)} segment{'s' if len(segments) > 1 else ''}.")
    lengths = [tf.cast(segment.row_lengths(), tf.int32) for segment in segments]
    keeps = _kept_lengths(lengths, room, truncate)
    # Where each segment starts in the packed row: after [CLS], or after A and its [SEP].
    starts = [tf.ones_like(keeps[0])]
    if len(segments) == 2:
        starts.append(keeps[0] + 2)
    total = starts[-1] + keeps[-1] + 1
    if pad_to_longest or max_length is None:
        width = tf.maximum(tf.reduce_max(total), 0)  # the max of an empty batch is int32's min
    else:
        width = max_length  # a static width: the outputs' shape says it
    positions = tf.range(width)[tf.newaxis, :]  # [1, width], broadcast against [batch, 1]
    token_ids = tf.where(positions == 0, cls_token_id, pad_token_id)
    # Each segment writes its kept pieces from `start` on, then its [SEP] right after them.
    for segment, start, keep in zip(segments, starts, keeps):
        start, keep = start[:, tf.newaxis], keep[:, tf.newaxis]
        piece = positions - start
        pieces = _pieces_at(tf.cast(segment.to_tensor(pad_token_id), tf.int32), piece,
                            pad_token_id)
        token_ids = tf.where(tf.logical_and(piece >= 0, piece < keep), pieces, token_ids)
        token_ids = tf.where(piece == keep, sep_token_id, token_ids)
    padding_mask = positions < total[:, tf.newaxis]
    if len(segments) == 2:
        # 1 from B's start up to the row's end, in integer arithmetic: the converter folds
        # a cast of a boolean into the embedding's `zeros_like`, which TFLite has no
        # boolean kernel for.
        in_second = tf.clip_by_value(positions - starts[1][:, tf.newaxis] + 1, 0, 1)
        in_row = tf.clip_by_value(total[:, tf.newaxis] - positions, 0, 1)
        segment_ids = in_second * in_row
    else:
        segment_ids = tf.zeros_like(token_ids)
    return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}
