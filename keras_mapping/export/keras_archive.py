"""A fine-tuned classifier as one `.keras` archive that takes raw text."""

import keras

from keras_mapping.checkpoints.model_dir import write_atomically
from keras_mapping.tokenizers import BertTextPreprocessor


def text_classifier_model(bundle):
    """A functional model from a `tf.string` batch to class probabilities: the bundle's
    tokenizer and packer, then its classifier, then a softmax.

    Example (strings go in as a `tf.string` tensor):

        model = text_classifier_model(load_classifier("saved_models/sst2_minilm_l6"))
        model.predict(tf.constant(["a wonderful film"]), verbose=0)  # [[0.021, 0.979]]
    """
    text = keras.Input(shape=(), dtype="string", name="text")
    features = BertTextPreprocessor(bundle.tokenizer, max_length=bundle.max_length,
                                    pad_to_longest=True, name="preprocessor")(text)
    probabilities = keras.layers.Softmax(dtype="float32", name="probabilities")(
        bundle.model(features))
    return keras.Model(text, probabilities, name="text_classifier")


def write_keras(bundle, path):
    """Saves `text_classifier_model(bundle)` to `path` (written atomically). Reload with
    `keras.saving.load_model(path)` after `import keras_mapping`."""
    write_atomically(path, text_classifier_model(bundle).save)
