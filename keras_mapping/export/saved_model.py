"""A fine-tuned classifier as one TF Serving SavedModel that takes raw text.

Tokenization, packing and truncation run inside the graph, so clients send strings and get
labels; only `tensorflow` and `tensorflow_text` (for the tokenizer's ops) are needed to load
it. Signatures:

- `serving_default`: `text` (`tf.string [None]`) to `probabilities` (`float32 [None,
  num_classes]`), `label_id` (`int32 [None]`) and `label` (`tf.string [None]`, the label
  vocabulary's names);
- `serve_tokens`: the same outputs from `token_ids`, `segment_ids` (`int32 [None, None]`)
  and `padding_mask` (`bool [None, None]`), for clients that tokenize themselves.
"""

import tensorflow as tf

from keras_mapping.tokenizers import BertTextPreprocessor

SERVING_VERSION = "1"


class TextClassifierServer(tf.Module):
    """The serving functions of a classifier bundle (see `model_dir.load_classifier`).

    Args:
        bundle: a `ClassifierBundle` (model, tokenizer, labels, max_length).
    """

    def __init__(self, bundle):
        super().__init__(name="text_classifier")
        self.model = bundle.model
        self.preprocessor = BertTextPreprocessor(bundle.tokenizer, max_length=bundle.max_length,
                                                 pad_to_longest=True)
        self.label_names = tf.constant(list(bundle.labels.names))

    def _outputs(self, inputs):
        logits = tf.cast(self.model(inputs, training=False), tf.float32)
        label_id = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {"probabilities": tf.nn.softmax(logits, axis=-1), "label_id": label_id,
                "label": tf.gather(self.label_names, label_id)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve_text(self, text):
        return self._outputs(self.preprocessor(text))

    @tf.function(input_signature=[{
        "token_ids": tf.TensorSpec([None, None], tf.int32, name="token_ids"),
        "segment_ids": tf.TensorSpec([None, None], tf.int32, name="segment_ids"),
        "padding_mask": tf.TensorSpec([None, None], tf.bool, name="padding_mask"),
    }])
    def serve_tokens(self, inputs):
        return self._outputs(inputs)


def write_saved_model(bundle, directory):
    """Writes the SavedModel of `bundle` to `directory` (its signatures in the module
    docstring)."""
    server = TextClassifierServer(bundle)
    tf.saved_model.save(server, str(directory), signatures={
        "serving_default": server.serve_text,
        "serve_tokens": server.serve_tokens.get_concrete_function(),
    })
