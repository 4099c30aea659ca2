"""A fine-tuned model as one `.keras` archive that takes raw text (or text pairs)."""

import keras

from keras_mapping.checkpoints.model_dir import write_atomically
from keras_mapping.tokenizers import BertTextPreprocessor


def text_task_model(bundle):
    """A functional model from a `tf.string` batch (two for pair models: `text`,
    `text_pair`) to the task's outputs: class probabilities, scores, or per-label
    probabilities. The bundle's tokenizer and packer run inside.

    Example (strings go in as a `tf.string` tensor):

        model = text_task_model(load_model_directory("saved_models/sst2_minilm_l6"))
        model.predict(tf.constant(["a wonderful film"]), verbose=0)  # [[0.021, 0.979]]
    """
    text = keras.Input(shape=(), dtype="string", name="text")
    inputs = [text]
    if bundle.task.pairs:
        inputs.append(keras.Input(shape=(), dtype="string", name="text_pair"))
    preprocessor = BertTextPreprocessor(bundle.tokenizer, max_length=bundle.max_length,
                                        pad_to_longest=True, name="preprocessor")
    features = preprocessor(tuple(inputs) if bundle.task.pairs else text)
    outputs = keras.layers.Activation(bundle.task.output_activation, dtype="float32",
                                      name="outputs")(
        bundle.model(features))
    return keras.Model(inputs if bundle.task.pairs else text, outputs, name="text_task")


def write_keras(bundle, path):
    """Saves `text_task_model(bundle)` to `path` (written atomically). Reload with
    `keras.saving.load_model(path)` after `import keras_mapping`."""
    write_atomically(path, text_task_model(bundle).save)
