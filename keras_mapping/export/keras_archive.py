"""A fine-tuned model as one `.keras` archive that takes raw text (or text pairs), or
encoded images for image models."""

import keras

from keras_mapping.checkpoints.model_dir import write_atomically
from keras_mapping.data.images import ImagePreprocessor
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


def image_task_model(bundle):
    """A functional model from a `tf.string` batch of encoded images (`image_bytes`: JPEG or
    PNG, any size) to class probabilities; the stored decoding, resizing and normalisation
    run inside (`ImagePreprocessor`)."""
    image_bytes = keras.Input(shape=(), dtype="string", name="image_bytes")
    task = bundle.task
    images = ImagePreprocessor(task.image_size, task.mean, task.std,
                               name="preprocessor")(image_bytes)
    outputs = keras.layers.Activation(task.output_activation, dtype="float32",
                                      name="outputs")(bundle.model(images))
    return keras.Model(image_bytes, outputs, name="image_task")


def write_keras(bundle, path):
    """Saves `text_task_model(bundle)` (`image_task_model` for image models) to `path`
    (written atomically). Reload with `keras.saving.load_model(path)` after
    `import keras_mapping`."""
    build = image_task_model if bundle.task.modality == "image" else text_task_model
    write_atomically(path, build(bundle).save)
