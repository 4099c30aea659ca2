"""Packing token ids into BERT's model inputs, and strings straight into them.

`keras_hub.layers.MultiSegmentPacker` needs a fixed sequence length and returns a tuple;
this packer also pads to the longest sequence of a batch, and packs in dense ops
(`dense_packing`), the same rows as tensorflow-text's trimmers and `combine_segments` give.
"""

import keras
import tensorflow as tf

from keras_mapping.tokenizers.dense_packing import TRUNCATIONS, pack_dense
from keras_mapping.tokenizers.wordpiece import BertTokenizer


def _as_ragged_ids(segment):
    """Returns `(ids as int32 [batch, (length)] ragged, whether the input was unbatched)`."""
    if not isinstance(segment, (tf.Tensor, tf.RaggedTensor)):
        try:
            segment = tf.convert_to_tensor(segment)
        except ValueError:
            segment = tf.ragged.constant(segment)
    if segment.shape.rank not in (1, 2):
        raise ValueError(
            "A segment must hold the ids of one sequence (rank 1) or of a batch (rank 2); "
            f"got shape {segment.shape}."
        )
    unbatched = segment.shape.rank == 1
    if unbatched:
        segment = segment[tf.newaxis]
    if isinstance(segment, tf.Tensor):
        segment = tf.RaggedTensor.from_tensor(segment)
    return tf.cast(segment, tf.int32), unbatched


@keras.saving.register_keras_serializable(package="keras_mapping")
class BertPacker(keras.layers.Layer):
    """Packs one segment or a pair into `[CLS] A [SEP]` / `[CLS] A [SEP] B [SEP]`.

    Segments are truncated to fit first, then padded with `pad_token_id`. Segment ids are 0
    for `[CLS]`, A and its `[SEP]`, and 1 for B and the final `[SEP]`.

    Args:
        cls_token_id: id of `[CLS]`.
        sep_token_id: id of `[SEP]`.
        pad_token_id: id of `[PAD]`.
        max_length: longest output row, special tokens included; longer inputs are
            truncated. `None` never truncates.
        pad_to_longest: pad each batch only to its longest row instead of to `max_length`
            (always the case when `max_length` is None).
        truncate: how a pair shares the room: `"round_robin"` hands it out one token at a
            time, A first, to the segments not yet complete; `"longest_first"` is Hugging
            Face's rule, the same except that an odd last token goes to the longer segment
            (B on a tie); `"waterfall"` fills A first and gives B what is left. One segment
            is simply cut to fit.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: ids of one segment, or a tuple of two segments; each a (ragged) tensor, a
            list of lists for a batch, or a 1-D tensor/list for one sequence.

    Returns:
        A dict of `token_ids` (int32), `segment_ids` (int32) and `padding_mask` (bool, True
        on real tokens), each `[batch, length]` (or `[length]` for unbatched inputs).

    Example:
    >>> packer = BertPacker(cls_token_id=101, sep_token_id=102, max_length=8)
    >>> outputs = packer(([[1, 2, 3, 4, 5]], [[6, 7, 8]]))
    >>> outputs["token_ids"].numpy().tolist()
    [[101, 1, 2, 3, 102, 6, 7, 102]]
    >>> outputs["segment_ids"].numpy().tolist()
    [[0, 0, 0, 0, 0, 1, 1, 1]]
    """

    def __init__(self, cls_token_id, sep_token_id, pad_token_id=0, max_length=128,
                 truncate="longest_first", pad_to_longest=False, **kwargs):
        super().__init__(**kwargs)
        if truncate not in TRUNCATIONS:
            raise ValueError(
                f"`truncate` must be one of {', '.join(map(repr, TRUNCATIONS))}; "
                f"got {truncate!r}."
            )
        if max_length is not None and (
                not isinstance(max_length, int) or max_length < 2):
            raise ValueError(
                "`max_length` must be None or an int of at least 2 (room for [CLS] and "
                f"[SEP]); got {max_length!r}."
            )
        self.cls_token_id = cls_token_id
        self.sep_token_id = sep_token_id
        self.pad_token_id = pad_token_id
        self.max_length = max_length
        self.truncate = truncate
        self.pad_to_longest = pad_to_longest
        # Ragged and integer-list inputs must reach `call` as they are; there are no weights.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    def call(self, inputs):
        segments = inputs if isinstance(inputs, tuple) else (inputs,)
        if len(segments) not in (1, 2):
            raise ValueError(
                f"BertPacker takes one segment or a pair of segments; got {len(segments)}."
            )
        segments, unbatched = zip(*(_as_ragged_ids(segment) for segment in segments))
        if len(set(unbatched)) > 1:
            raise ValueError("Both segments must be batched, or neither.")
        outputs = pack_dense(segments, self.max_length, self.cls_token_id, self.sep_token_id,
                             self.pad_token_id, self.truncate, self.pad_to_longest)
        if unbatched[0]:
            outputs = {name: value[0] for name, value in outputs.items()}
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            cls_token_id=self.cls_token_id,
            sep_token_id=self.sep_token_id,
            pad_token_id=self.pad_token_id,
            max_length=self.max_length,
            truncate=self.truncate,
            pad_to_longest=self.pad_to_longest,
        )
        return config


def _is_pair(inputs):
    """A tuple of two text batches is a pair; so is a list of two tensors, which is how a
    reloaded functional model passes the tuple. A list of strings is one batch."""
    if isinstance(inputs, tuple):
        return True
    return (isinstance(inputs, list) and len(inputs) == 2
            and not any(isinstance(item, (str, bytes)) for item in inputs))


@keras.saving.register_keras_serializable(package="keras_mapping")
class BertTextPreprocessor(keras.layers.Layer):
    """Raw strings (or string pairs) to BERT's model inputs: tokenize, then pack.

    Args:
        tokenizer: a `BertTokenizer`.
        max_length: longest output row, or `None` for no truncation.
        truncate: `"longest_first"` (the reference tokenizer's rule), `"round_robin"` or
            `"waterfall"`, as in `BertPacker`.
        pad_to_longest: pad to the longest row of each batch instead of to `max_length`.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: a string or a batch of strings, or a tuple of two such for sentence pairs.

    Returns:
        The dict of `token_ids`, `segment_ids` and `padding_mask` of `BertPacker`.

    Example:
    >>> preprocessor = BertTextPreprocessor.from_preset("minilm_l6", max_length=8)
    >>> outputs = preprocessor((["The movie?"], ["Great!"]))
    >>> outputs["token_ids"].numpy().tolist()
    [[101, 1996, 3185, 1029, 102, 2307, 999, 102]]
    >>> outputs["padding_mask"].numpy().tolist()
    [[True, True, True, True, True, True, True, True]]
    """

    def __init__(self, tokenizer, max_length=128, truncate="longest_first", pad_to_longest=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.packer = BertPacker(
            cls_token_id=tokenizer.cls_token_id,
            sep_token_id=tokenizer.sep_token_id,
            pad_token_id=tokenizer.pad_token_id,
            max_length=max_length,
            truncate=truncate,
            pad_to_longest=pad_to_longest,
        )
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    @classmethod
    def from_preset(cls, name_or_dir, max_length=128, truncate="longest_first", **kwargs):
        """Builds the preprocessor on `BertTokenizer.from_preset(name_or_dir)`.

        Args:
            name_or_dir: a preset name or a BERT directory.
            max_length: as in the constructor.
            truncate: as in the constructor.
            **kwargs: standard layer arguments.

        Example:
        >>> BertTextPreprocessor.from_preset("minilm_l6").packer.max_length
        128
        """
        return cls(BertTokenizer.from_preset(name_or_dir), max_length, truncate, **kwargs)

    def call(self, inputs):
        if _is_pair(inputs):
            return self.packer(tuple(self.tokenizer.tokenize(text) for text in inputs))
        return self.packer(self.tokenizer.tokenize(inputs))

    def compute_output_spec(self, inputs):
        first = inputs[0] if _is_pair(inputs) else inputs
        length = None if self.packer.pad_to_longest else self.packer.max_length
        shape = tuple(first.shape) + (length,)
        return {
            "token_ids": keras.KerasTensor(shape, "int32"),
            "segment_ids": keras.KerasTensor(shape, "int32"),
            "padding_mask": keras.KerasTensor(shape, "bool"),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            tokenizer=keras.saving.serialize_keras_object(self.tokenizer),
            max_length=self.packer.max_length,
            truncate=self.packer.truncate,
            pad_to_longest=self.packer.pad_to_longest,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["tokenizer"] = keras.saving.deserialize_keras_object(config["tokenizer"])
        return cls(**config)
