"""A fine-tuned model as one TFLite file that takes raw text (or text pairs).

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

Inputs: `text` (`tf.string [None]`), and `text_pair` for pair models. Outputs, by name: the
task's numeric serving outputs (`probabilities` and `label_id` for classification, `score`
for regression, `probabilities` and `predicted` for multi-label).

Image models take `images` (`float32 [None, height, width, 3]`: RGB pixels in [0, 1], already
decoded and resized to the model's size, as `keras_mapping.data.images.decode_and_resize`
does) and normalise them inside: TFLite has no builtin kernel that decodes JPEG or PNG.
"""

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from keras_mapping.checkpoints.model_dir import write_atomically
from keras_mapping.data.images import normalize
from keras_mapping.tokenizers.dense_packing import pack_dense


class TFLiteWordPieces(tf.Module):
    """BERT's normalization and WordPiece in tensorflow-text ops with TFLite kernels:
    `pieces(text)` gives the ragged word-piece ids of a batch of strings.

    Args:
        tokenizer: the `BertTokenizer` whose vocabulary and settings to follow.
    """

    def __init__(self, tokenizer):
        super().__init__(name="tflite_word_pieces")
        if tokenizer.strip_accents not in (None, tokenizer.lowercase):
            raise ValueError(
                "TFLite export supports BERT's two normalizations (lowercase with accents "
                "stripped, or neither); this tokenizer has lowercase="
                f"{tokenizer.lowercase}, strip_accents={tokenizer.strip_accents}.")
        self.special_ids = (tokenizer.cls_token_id, tokenizer.sep_token_id,
                            tokenizer.pad_token_id)
        self.normalizer = tf_text.FastBertNormalizer(
            lower_case_nfd_strip_accents=tokenizer.lowercase)
        self.wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=list(tokenizer.get_vocabulary()), suffix_indicator=tokenizer.suffix_indicator,
            max_bytes_per_word=4 * tokenizer.max_input_chars_per_word,
            token_out_type=tf.int32, unknown_token=tokenizer.oov_token,
            no_pretokenization=False)

    def pieces(self, text):
        return self.wordpiece.tokenize(self.normalizer.normalize(text))


class TFLiteTaskModel(tf.Module):
    """The text-to-outputs function of a model bundle (text pairs for pair models), in
    TFLite-convertible ops: `TFLiteWordPieces`, `pack_dense`, the network.

    Args:
        bundle: a `ModelBundle` (see `keras_mapping.tasks.model_directory`).
    """

    def __init__(self, bundle):
        super().__init__(name="tflite_task_model")
        self.tokenizer = TFLiteWordPieces(bundle.tokenizer)
        self.model = bundle.model
        self.task = bundle.task
        self.max_length = bundle.max_length

    def _outputs(self, texts):
        pieces = tuple(self.tokenizer.pieces(text) for text in texts)
        inputs = pack_dense(pieces, self.max_length, *self.tokenizer.special_ids)
        return dict(self.task.serving_outputs(self.model(inputs, training=False)))

    # No autograph: nothing here branches on tensors, and converting the Keras call inside
    # failed once other modules had been converted in the same process.
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")],
                 autograph=False)
    def serve_text(self, text):
        return self._outputs((text,))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text"),
                                  tf.TensorSpec([None], tf.string, name="text_pair")],
                 autograph=False)
    def serve_pair(self, text, text_pair):
        return self._outputs((text, text_pair))


class TFLiteImageModel(tf.Module):
    """The pixels-to-outputs function of an image model bundle: normalisation, the network
    and the task's numeric outputs."""

    def __init__(self, bundle):
        super().__init__(name="tflite_image_model")
        self.model = bundle.model
        self.task = bundle.task
        self.serve_pixels = tf.function(self._serve_pixels, autograph=False, input_signature=[
            tf.TensorSpec([None, *bundle.task.image_size, 3], tf.float32, name="images")])

    def _serve_pixels(self, images):
        images = normalize(images, self.task.mean, self.task.std)
        return dict(self.task.serving_outputs(self.model(images, training=False)))


def _serving_module(bundle):
    """`(module, its serving function)`: the caller keeps the module alive while tracing,
    since a tf.function method holds its instance only weakly."""
    if bundle.task.modality == "image":
        module = TFLiteImageModel(bundle)
        return module, module.serve_pixels
    module = TFLiteTaskModel(bundle)
    return module, module.serve_pair if bundle.task.pairs else module.serve_text


QUANTIZATIONS = ("int8", "float16")


def write_tflite(bundle, path, quantize=None):
    """Converts `bundle` to a `.tflite` file at `path` (written atomically), with one
    signature, "serving_default", named inputs (`text`, and `text_pair` for pair models;
    `images` for image models) and the task's numeric outputs by name.

    `quantize` (None, or one of `QUANTIZATIONS`) applies the converter's post-training
    quantization to the frozen weights; inputs, outputs and the signature stay the same:
    "int8" is dynamic-range quantization (weights stored as int8, with float scales;
    matmuls run in int8 on activations quantized on the fly, everything else in float32),
    "float16" stores the weights as float16 (dequantized to float32 for computation on
    CPU).

    Raises:
        ValueError: the tokenizer's normalization has no TFLite equivalent, or an unknown
            `quantize`.
    """
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(f"`quantize` must be None or one of {QUANTIZATIONS}, got "
                         f"{quantize!r}.")
    module, serve = _serving_module(bundle)  # noqa: F841  (kept alive while tracing)
    concrete = serve.get_concrete_function()
    # Frozen here: left to the converter, the same graph computed NaNs in the interpreter.
    frozen = convert_variables_to_constants_v2(concrete)
    # Freezing flattens the output dict (in sorted key order); naming them again keeps the
    # signature's outputs addressable by name.
    names = sorted(concrete.structured_outputs)

    @tf.function(input_signature=serve.input_signature, autograph=False)
    def named(*inputs):
        return dict(zip(names, frozen(*inputs)))

    holder = tf.Module()  # with a trackable object the converter writes a signature
    holder.serve = named
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [named.get_concrete_function()], holder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = True  # the tensorflow-text ops, which have TFLite kernels
    if quantize is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
    content = converter.convert()
    write_atomically(path, lambda temporary: open(temporary, "wb").write(content))


def tflite_interpreter(path):
    """A Python TFLite interpreter for `path` with tensorflow-text's ops registered."""
    from tensorflow.lite.python import interpreter

    return interpreter.InterpreterWithCustomOps(
        custom_op_registerers=tf_text.tflite_registrar.SELECT_TFTEXT_OPS,
        model_path=str(path))


def run_tflite(interpreter, texts, text_pairs=None):
    """The outputs by name (e.g. `probabilities`, `label_id`; `score`) for a list of strings
    (and their pairs), from a `tflite_interpreter`."""
    inputs = {"text": texts} if text_pairs is None else {"text": texts, "text_pair": text_pairs}
    runner = interpreter.get_signature_runner()
    return runner(**{name: np.array([text.encode("utf-8") for text in values], dtype=object)
                     for name, values in inputs.items()})
