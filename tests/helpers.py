"""Checks every layer gets: shapes, config and `.keras` round trips, jit, mixed precision."""

import contextlib
import json
import sys

import keras
import numpy as np

from keras_mapping.cli.main import main

# How a test starts the CLI in a process of its own, as a user's shell would.
CLI_PROCESS = (sys.executable, "-m", "keras_mapping.cli.main")


@contextlib.contextmanager
def variables_created_in_traces():
    """Yields the list of variables created while a `tf.function` was being traced: Keras
    state made lazily inside the first trace of a training step (optimizer slots, loss
    trackers, metric states) makes TensorFlow trace that whole step a second time."""
    import tensorflow as tf

    created = []

    def record(next_creator, **kwargs):
        if tf.inside_function():
            created.append(kwargs.get("name"))
        return next_creator(**kwargs)

    with tf.variable_creator_scope(record):
        yield created


def ops_after_graph_optimization(function, *args):
    """The op types TensorFlow runs for `function(*args)` in a graph once Grappler has
    rewritten it (its oneDNN fusions included), read from the run metadata of the first call
    of a fresh `tf.function` (a function's optimized graph is recorded when instantiated).
    The metadata also holds graphs of single ops run eagerly before; only the graph built
    from this function's own ops counts."""
    import tensorflow as tf
    from tensorflow.python.eager import context  # no public API returns the optimized graph

    concrete = tf.function(function).get_concrete_function(*args)
    traced_names = {op.name for op in concrete.graph.get_operations()}
    context.enable_run_metadata()
    try:
        concrete(*args)
        metadata = context.export_run_metadata()
    finally:
        context.disable_run_metadata()
    own = [graph for graph in metadata.function_graphs
           if len(traced_names & {node.name for node in graph.pre_optimization_graph.node})
           > len(traced_names) // 2]
    assert len(own) == 1, f"{len(own)} graphs of the traced function in the run metadata"
    return {node.op for node in own[0].post_optimization_graph.node}


def cli_command(*arguments):
    """The argv of `keras-mapping ARGUMENTS` in a fresh process."""
    return [*CLI_PROCESS, *map(str, arguments)]


def run_cli_here(command):
    """Runs a `cli_command` in this process instead (no TensorFlow start-up to pay), for
    reference runs that need not be isolated; asserts that it succeeded."""
    assert tuple(command[:len(CLI_PROCESS)]) == CLI_PROCESS, command
    assert main(command[len(CLI_PROCESS):]) == 0


def symbolic_inputs(call_inputs):
    return {
        name: keras.Input(shape=value.shape[1:], dtype=str(value.dtype), name=name)
        for name, value in call_inputs.items()
    }


def wrap_in_model(layer, call_inputs, call_kwargs):
    inputs = symbolic_inputs(call_inputs)
    outputs = layer(**inputs, **call_kwargs)
    return keras.Model(inputs, outputs)


def assert_close(actual, expected, atol=1e-5):
    for a, e in zip(keras.tree.flatten(actual), keras.tree.flatten(expected)):
        np.testing.assert_allclose(np.asarray(a, "float32"), np.asarray(e, "float32"), atol=atol)


def run_layer_test(layer_cls, init_kwargs, call_inputs, expected_output_shape, tmp_path,
                   call_kwargs=None):
    """Builds `layer_cls(**init_kwargs)`, calls it on `call_inputs` (a dict of NumPy arrays
    keyed by call-argument name) and checks, in turn: the output shape, a
    `get_config`/`from_config` round trip, a `.keras` save/load round trip, `jit_compile=True`
    and the `mixed_bfloat16` policy. Returns the layer."""
    call_kwargs = call_kwargs or {}
    layer = layer_cls(**init_kwargs)
    output = layer(**call_inputs, **call_kwargs)
    shapes = keras.tree.map_structure(lambda x: tuple(x.shape), output)
    assert shapes == expected_output_shape

    clone = layer_cls.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone(**call_inputs, **call_kwargs)
    clone.set_weights(layer.get_weights())
    assert_close(clone(**call_inputs, **call_kwargs), output)

    model = wrap_in_model(layer, call_inputs, call_kwargs)
    path = tmp_path / f"{layer_cls.__name__}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert_close(reloaded.predict(call_inputs, verbose=0), output)

    model.compile(jit_compile=True)
    assert_close(model.predict(call_inputs, verbose=0), output)

    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = layer_cls(**init_kwargs)
        mixed_output = mixed(**call_inputs, **call_kwargs)
        assert mixed.compute_dtype == "bfloat16"
        assert all(w.dtype == "float32" for w in mixed.weights)
        for tensor in keras.tree.flatten(mixed_output):
            assert np.isfinite(np.asarray(tensor, "float32")).all()
        mixed.set_weights(layer.get_weights())
        assert_close(mixed(**call_inputs, **call_kwargs), output, atol=0.1)
    finally:
        keras.config.set_dtype_policy("float32")
    return layer


class AtStep(keras.callbacks.Callback):
    """Calls `action(model)` after training step `step` (counted from 1 within this `fit`):
    something that happens to a run midway, such as a crash or a poisoned weight."""

    def __init__(self, step, action):
        super().__init__()
        self.step, self.action, self.steps = step, action, 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps == self.step:
            self.action(self.model)


QUIET = dict(verbose=0, print_fn=lambda *_: None)


def _killed(model):
    raise KeyboardInterrupt("killed")


def assert_same_weights(directory_a, directory_b, atol=1e-6):
    """The models of two `finetune` model directories hold the same weights."""
    from keras_mapping.tasks.model_directory import load_model_directory

    for a, b in zip(load_model_directory(directory_a).model.get_weights(),
                    load_model_directory(directory_b).model.get_weights()):
        np.testing.assert_allclose(a, b, atol=atol)


def killed_then_resumed(run, config, at_step):
    """Runs `run(config)` (`finetune`, `pretrain_images`, ...) killed after training step
    `at_step`, then again with the same recipe, which resumes; returns its metrics."""
    import pytest

    with pytest.raises(KeyboardInterrupt):
        run(config, callbacks=[AtStep(at_step, _killed)], **QUIET)
    return run(config, **QUIET)


def check_float32_outputs_under_mixed_bfloat16(build_model, inputs):
    """Under the `mixed_bfloat16` policy, a task model built by `build_model()` computes its
    blocks in bfloat16 and still returns finite float32 outputs (for losses and softmax)."""
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = build_model()
    assert model.backbone.encoder_layers[0].compute_dtype == "bfloat16"
    outputs = model(inputs)
    assert keras.backend.standardize_dtype(outputs.dtype) == "float32"
    assert np.isfinite(np.asarray(outputs)).all()


def cli_json(capsys, *arguments):
    """Runs the CLI (which must succeed) and returns the JSON lines it printed."""
    assert main([str(argument) for argument in arguments]) == 0, capsys.readouterr().err
    lines = capsys.readouterr().out.strip().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


IMAGE_COLORS = {"blue": (0, 0, 255), "green": (0, 255, 0), "red": (255, 0, 0)}


def write_image(path, color, rng, size=16):
    """A noisy image of one colour, encoded by its suffix (.png, else JPEG)."""
    import tensorflow as tf

    noise = rng.integers(0, 60, (size, size, 3))
    pixels = np.clip(np.asarray(color) * 0.75 + noise, 0, 255).astype("uint8")
    encoded = (tf.io.encode_png(pixels) if path.suffix == ".png"
               else tf.io.encode_jpeg(pixels, quality=95))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encoded.numpy())
    return path


def write_image_folder(root, counts=(("train", 6), ("validation", 3)), size=16, seed=0):
    """`root/<split>/<colour>/<i>.png|jpg`: `count` images per colour class (PNG and JPEG
    alternating) whose class is their colour. Returns `root`."""
    rng = np.random.default_rng(seed)
    for split, count in counts:
        for name, color in IMAGE_COLORS.items():
            for index in range(count):
                suffix = ".png" if index % 2 else ".jpg"
                write_image(root / split / name / f"{index}{suffix}", color, rng, size)
    return root


CORPUS_WORDS = ("film story actor scene music plot ending camera script drama comedy hero "
                "village river mountain garden winter summer letter window").split()


def corpus_documents(count, sentences=5, seed=0, words=8):
    """`count` documents of `sentences` random sentences; each sentence starts with its
    document's number, so a test can tell which document a sentence came from."""
    rng = np.random.default_rng(seed)
    return [[f"doc{d} " + " ".join(rng.choice(CORPUS_WORDS, words)) for _ in range(sentences)]
            for d in range(count)]


def write_corpus(path, documents, compress=False):
    """Writes documents as a pretraining corpus (one sentence a line, a blank line between
    documents), gzip'd with `compress`. Returns `path`."""
    import gzip

    text = "\n\n".join("\n".join(document) for document in documents).encode("utf-8") + b"\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text, mtime=0) if compress else text)
    return path
