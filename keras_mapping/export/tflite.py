"""A fine-tuned classifier as one TFLite file that takes raw text.

The tokenizer inside is built from tensorflow-text ops that have TFLite kernels
(`FastBertNormalize`, `FastWordpieceTokenizeWithOffsets`, `RaggedTensorToTensor`): BERT's
normalization and punctuation/whitespace splitting, then WordPiece, in one pass. Everything
else converts to TFLite builtins (exact GELU included), with the weights frozen into the
file. Interpreters need tensorflow-text's TFLite op registrar: in Python
`InterpreterWithCustomOps(custom_op_registerers=tf_text.tflite_registrar.SELECT_TFTEXT_OPS)`
(see `tflite_interpreter`), on Android/iOS the tensorflow-text TFLite ops library.

Known difference from `BertTokenizer`: special tokens written literally in the text
(`"[MASK]"`) are split as punctuation and letters rather than kept whole, and CJK characters
follow tensorflow-text's splitting; for ordinary text the ids are the same (the SST-2
validation set agrees on every label, see BENCHMARKS.md).

Inputs: `text` (`tf.string [None]`). Outputs: `probabilities` (`float32 [None,
num_classes]`), `label_id` (`int32 [None]`).
"""

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from keras_mapping.checkpoints.model_dir import write_atomically


class TFLiteTextClassifier(tf.Module):
    """The text-to-probabilities function of a classifier bundle, in TFLite-convertible ops.

    Args:
        bundle: a `ClassifierBundle` (see `model_dir.load_classifier`).
    """

    def __init__(self, bundle):
        super().__init__(name="tflite_text_classifier")
        tokenizer = bundle.tokenizer
        if tokenizer.strip_accents not in (None, tokenizer.lowercase):
            raise ValueError(
                "TFLite export supports BERT's two normalizations (lowercase with accents "
                "stripped, or neither); this tokenizer has lowercase="
                f"{tokenizer.lowercase}, strip_accents={tokenizer.strip_accents}.")
        self.model = bundle.model
        self.max_length = bundle.max_length
        self.cls_token_id = tokenizer.cls_token_id
        self.sep_token_id = tokenizer.sep_token_id
        self.pad_token_id = tokenizer.pad_token_id
        self.normalizer = tf_text.FastBertNormalizer(
            lower_case_nfd_strip_accents=tokenizer.lowercase)
        self.wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=list(tokenizer.get_vocabulary()), suffix_indicator=tokenizer.suffix_indicator,
            max_bytes_per_word=4 * tokenizer.max_input_chars_per_word,
            token_out_type=tf.int32, unknown_token=tokenizer.oov_token,
            no_pretokenization=False)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        pieces = self.wordpiece.tokenize(self.normalizer.normalize(text))
        room = self.max_length - 2
        # Dense ops only from here: slicing a ragged tensor needs RaggedRange, which TFLite
        # lacks.
        lengths = tf.minimum(tf.cast(pieces.row_lengths(), tf.int32), room) + 2
        width = tf.reduce_max(lengths)
        batch = tf.shape(text)[0]
        body = pieces.to_tensor(default_value=self.pad_token_id)[:, :room]
        token_ids = tf.concat([tf.fill([batch, 1], self.cls_token_id), body,
                               tf.fill([batch, 1], self.pad_token_id)], axis=1)[:, :width]
        positions = tf.range(width)[tf.newaxis, :]
        token_ids = tf.where(positions == (lengths - 1)[:, tf.newaxis], self.sep_token_id,
                             token_ids)
        padding_mask = positions < lengths[:, tf.newaxis]
        token_ids = tf.where(padding_mask, token_ids, self.pad_token_id)
        logits = tf.cast(self.model({"token_ids": token_ids,
                                     "segment_ids": tf.zeros_like(token_ids),
                                     "padding_mask": padding_mask}, training=False), tf.float32)
        return {"probabilities": tf.nn.softmax(logits, axis=-1),
                "label_id": tf.argmax(logits, axis=-1, output_type=tf.int32)}


def write_tflite(bundle, path):
    """Converts `bundle` to a `.tflite` file at `path` (written atomically).

    Raises:
        ValueError: the tokenizer's normalization has no TFLite equivalent.
    """
    module = TFLiteTextClassifier(bundle)
    frozen = convert_variables_to_constants_v2(module.serve.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = True  # the tensorflow-text ops, which have TFLite kernels
    content = converter.convert()
    write_atomically(path, lambda temporary: open(temporary, "wb").write(content))


def tflite_interpreter(path):
    """A Python TFLite interpreter for `path` with tensorflow-text's ops registered."""
    from tensorflow.lite.python import interpreter

    return interpreter.InterpreterWithCustomOps(
        custom_op_registerers=tf_text.tflite_registrar.SELECT_TFTEXT_OPS,
        model_path=str(path))


def run_tflite(interpreter, texts):
    """`{"probabilities", "label_id"}` for a list of strings, from a `tflite_interpreter`."""
    data = np.array([text.encode("utf-8") for text in texts], dtype=object)
    text_input = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(text_input["index"], [len(data)])
    interpreter.allocate_tensors()
    interpreter.set_tensor(text_input["index"], data)
    interpreter.invoke()
    outputs = {}
    for detail in interpreter.get_output_details():
        value = interpreter.get_tensor(detail["index"])
        outputs["probabilities" if value.ndim == 2 else "label_id"] = value
    return outputs
