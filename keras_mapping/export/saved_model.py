"""A fine-tuned model as one TF Serving SavedModel that takes raw text (or text pairs).

Tokenization, packing and truncation run inside the graph, so clients send strings; only
`tensorflow` and `tensorflow_text` (for the tokenizer's ops) are needed to load it.
Signatures:

- `serving_default`: `text` (`tf.string [None]`), and `text_pair` for models trained on
  pairs, to the task's outputs: `probabilities`, `label_id` and `label` (the label names)
  for classification; `score` for regression; `probabilities` and `predicted` (0/1 per
  label, at the stored thresholds) for multi-label;
- token classification: `serving_default` takes `text` only and returns per word piece
  (padded to the longest text) `tag`, `tag_id`, `score`, `probabilities`, the `start` and
  `end` character offsets of the piece in the text, `word_id`, `first_piece` and
  `piece_mask` (see `keras_mapping.export.tagging_graph.tag_pieces`; texts longer than the
  model are windowed as `predict` does); `keras_mapping.tasks.entities.served_entities`
  groups them into entities;
- `serve_tokens`: the same outputs from `token_ids`, `segment_ids` (`int32 [None, None]`)
  and `padding_mask` (`bool [None, None]`), for clients that tokenize themselves;
- image classification: `serving_default` takes `image_bytes` (`tf.string [None]`, encoded
  JPEG or PNG images of any size; decoded, resized and normalised inside as in training)
  and returns `probabilities`, `label_id` and `label`; `serve_pixels` the same from
  `images` (`float32 [None, height, width, 3]`, RGB in [0, 1] at the model's size).
  Only `tensorflow` is needed to load it.
"""

import warnings

import tensorflow as tf

from keras_mapping.data.images import images_from_bytes, normalize
from keras_mapping.export.tagging_graph import tag_pieces
from keras_mapping.tokenizers import BertTextPreprocessor

SERVING_VERSION = "1"
# Serving takes no gradients: not saving those of custom-gradient ops (Keras' int8 layers
# have them) saves about a second per int8 export (6.1 s -> 5.0 s for a tiny text model).
SAVE_OPTIONS = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
TEXT_SPEC = tf.TensorSpec([None], tf.string, name="text")
PAIR_SPEC = tf.TensorSpec([None], tf.string, name="text_pair")


# Every signature below is traced with autograph=False: they branch on static values only,
# and converting their code (and tensorflow-text's, inside the tokenizer) cost about 0.6 s.


class _Untracked:
    """Holds an object out of a SavedModel's object graph."""

    def __init__(self, value):
        self.value = value


class ModelServer(tf.Module):
    """A module that serves a Keras model. The SavedModel needs the variables the signatures
    capture, so those are what it tracks; not the Keras model: with the model in its object
    graph, the save traced every signature a second time (measured on a tiny pair model,
    whose export took 12.3 s, 7.3 s of it tracing its text signature twice)."""

    def __init__(self, name, model):
        super().__init__(name=name)
        self._model = _Untracked(model)
        self.model_variables = [variable.value for variable in model.variables]

    @property
    def model(self):
        return self._model.value


class TaskServer(ModelServer):
    """The serving functions of a model bundle (see `load_model_directory`).

    Args:
        bundle: a `ModelBundle` (model, tokenizer, task, max_length).
    """

    def __init__(self, bundle):
        super().__init__("task_server", bundle.model)
        self.task = bundle.task
        self.preprocessor = BertTextPreprocessor(bundle.tokenizer, max_length=bundle.max_length,
                                                 pad_to_longest=True)
        names = bundle.task.label_names
        self.label_names = None if names is None else tf.constant(names)
        # Made here with this model's inputs, so that only its own text signature is traced
        # and saved (each costs a trace of tokenizer, packer and network).
        self.serve_text = tf.function(self._serve_text, autograph=False, input_signature=(
            [TEXT_SPEC, PAIR_SPEC] if bundle.task.pairs else [TEXT_SPEC]))

    def outputs(self, inputs):
        return served_outputs(self.model, self.task, self.label_names, inputs)

    def _serve_text(self, *texts):  # `text`, and `text_pair` for pair models
        return self.outputs(self.preprocessor(texts if len(texts) > 1 else texts[0]))

    @tf.function(autograph=False, input_signature=[{
        "token_ids": tf.TensorSpec([None, None], tf.int32, name="token_ids"),
        "segment_ids": tf.TensorSpec([None, None], tf.int32, name="segment_ids"),
        "padding_mask": tf.TensorSpec([None, None], tf.bool, name="padding_mask"),
    }])
    def serve_tokens(self, inputs):
        return self.outputs(inputs)


def served_outputs(model, task, label_names, inputs):
    """The task's serving outputs of `model(inputs)`, with `label` (the name of `label_id`)
    for tasks with label names."""
    outputs = dict(task.serving_outputs(model(inputs, training=False)))
    if label_names is not None and "label_id" in outputs:
        outputs["label"] = tf.gather(label_names, outputs["label_id"])
    return outputs


class ImageServer(ModelServer):
    """The serving functions of an image model bundle: encoded images (or pixels) in."""

    def __init__(self, bundle):
        super().__init__("image_server", bundle.model)
        self.task = bundle.task
        self.label_names = tf.constant(bundle.task.label_names)
        # Signatures made here: the pixels' shape is this model's image size.
        self.serve_bytes = tf.function(self._serve_bytes, autograph=False, input_signature=[
            tf.TensorSpec([None], tf.string, name="image_bytes")])
        self.serve_pixels = tf.function(self._serve_pixels, autograph=False, input_signature=[
            tf.TensorSpec([None, *bundle.task.image_size, 3], tf.float32, name="images")])

    def _serve_bytes(self, image_bytes):
        return self._serve_pixels(images_from_bytes(image_bytes, self.task.image_size))

    def _serve_pixels(self, images):
        images = normalize(images, self.task.mean, self.task.std)
        return served_outputs(self.model, self.task, self.label_names, images)


class TaggingServer(ModelServer):
    """The serving function of a token-classification model bundle: raw text to tagged
    pieces with character offsets."""

    def __init__(self, bundle):
        super().__init__("tagging_server", bundle.model)
        self.tokenizer = bundle.tokenizer
        self.max_length = bundle.max_length
        self.stride = bundle.task.stride
        self.tag_names = tf.constant(bundle.task.tag_names)

    @tf.function(input_signature=[TEXT_SPEC], autograph=False)
    def serve_text(self, text):
        return tag_pieces(self.model, self.tokenizer, text, self.max_length, self.stride,
                          self.tag_names)


def write_saved_model(bundle, directory, quantize=None):
    """Writes the SavedModel of `bundle` to `directory` (its signatures in the module
    docstring). `quantize="int8"` first applies Keras' own `model.quantize("int8")` to the
    bundle's model (int8 weights of its Dense, EinsumDense and Embedding layers, with float
    scales; their matmuls run in int8 on activations quantized on the fly); the signatures
    stay the same."""
    if quantize is not None:
        if quantize != "int8":
            raise ValueError(f"a SavedModel takes `quantize` None or 'int8', got "
                             f"{quantize!r}.")
        with warnings.catch_warnings():
            # One warning per layer kind without int8 weights (LayerNormalization, ...).
            warnings.filterwarnings("ignore", "Layer .* does not have a `quantize` method")
            bundle.model.quantize("int8")
    if bundle.task.modality == "image":
        server = ImageServer(bundle)
        tf.saved_model.save(server, str(directory), options=SAVE_OPTIONS, signatures={
            "serving_default": server.serve_bytes,
            "serve_pixels": server.serve_pixels})
        return
    if bundle.task.name == "token-classification":
        server = TaggingServer(bundle)
        tf.saved_model.save(server, str(directory), options=SAVE_OPTIONS, signatures={
            "serving_default": server.serve_text})
        return
    server = TaskServer(bundle)
    tf.saved_model.save(server, str(directory), options=SAVE_OPTIONS, signatures={
        "serving_default": server.serve_text,
        "serve_tokens": server.serve_tokens,
    })
