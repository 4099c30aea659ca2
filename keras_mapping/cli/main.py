"""`keras-mapping`: the command line. Each verb parses flags and calls the public API."""

import argparse
import dataclasses
import json
import os
import re
import sys
import typing


def _argument_docs(cls):
    """`{argument: help text}` from the "Args:" section of a class docstring."""
    docs, name = {}, None
    for line in (cls.__doc__ or "").split("Args:", 1)[-1].splitlines():
        match = re.match(r"\s{8}(\w+): (.*)", line)
        if match:
            name = match.group(1)
            docs[name] = match.group(2)
        elif name and line.startswith(" " * 12):
            docs[name] += " " + line.strip()
    return docs


# Other spellings users bring from other tools.
FLAG_ALIASES = {"precision": ("--mixed-precision",)}


def _add_config_flags(parser, config_cls):
    """One flag per field of a config dataclass, typed and documented from the class."""
    # argparse expands "%" in help texts; the docstrings mean it literally ("80% [MASK]").
    docs = {name: text.replace("%", "%%") for name, text in _argument_docs(config_cls).items()}
    for field in dataclasses.fields(config_cls):
        flags = ("--" + field.name.replace("_", "-"), *FLAG_ALIASES.get(field.name, ()))
        # The field's own default, not an instance's: a recipe may fill unset (None) fields
        # from other settings (the method's learning rate), which a flag default would hide.
        default = (field.default_factory() if field.default_factory is not dataclasses.MISSING
                   else field.default)
        help_text = f"{docs.get(field.name, '')} (default: {default})"
        if isinstance(default, bool):
            parser.add_argument(*flags, action=argparse.BooleanOptionalAction, default=default,
                                help=help_text)
            continue
        if isinstance(default, list) or field.metadata.get("nargs"):
            # An empty list is a value the user must give (the corpus); None is optional.
            parser.add_argument(*flags, nargs="+", default=default,
                                required=isinstance(default, list) and not default,
                                help=f"{docs.get(field.name, '')} (default: "
                                     f"{' '.join(map(str, default or [])) or 'none'})",
                                metavar=field.name.upper())
            continue
        kind = next((t for t in typing.get_args(field.type) if t is not type(None)), field.type)
        kind = kind if kind in (int, float) else str
        parser.add_argument(*flags, type=kind, default=default, help=help_text,
                            metavar=field.name.upper())


def _add_recipe_verb(verbs, name, config_cls, run, help_text):
    """A training verb: one flag per recipe field, and `--verbose`."""
    parser = verbs.add_parser(name, help=help_text)
    _add_config_flags(parser, config_cls)
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2),
                        help="Keras progress output: 0 none, 1 bar, 2 a line per round.")
    parser.set_defaults(run=run)
    return parser


def _add_on_bad_bytes_flag(parser):
    parser.add_argument("--on-bad-bytes", default="error", choices=("error", "replace"),
                        help="Bytes that are not UTF-8 in input files: stop with the file and "
                             "line (error), or read them as U+FFFD (replace).")


def _add_inference_flags(parser):
    from keras_mapping.training.distribute import INFERENCE_STRATEGIES

    _add_on_bad_bytes_flag(parser)
    parser.add_argument("--strategy", default="auto", choices=INFERENCE_STRATEGIES,
                        help="Where to compute: auto, default (one device), mirrored (all "
                             "local GPUs or logical CPUs) or tpu (default: auto).")


def _demo(arguments):
    from keras_mapping.examples.tour import run_sentiment_tour, run_tour

    run_tour(preset=arguments.preset)
    if arguments.train_examples:
        run_sentiment_tour(out=arguments.out, train_examples=arguments.train_examples)


def _presets(arguments):
    from keras_mapping.checkpoints.presets import IMAGE_PRESETS, PRESETS, local_copy

    for name, preset in {**PRESETS, **IMAGE_PRESETS}.items():
        local = local_copy(preset)
        where = f"local: {local}" if local else f"hub: {preset.hub_id}"
        print(f"{name:12s} {preset.description}  [{where}]")


def _config(config_cls, arguments):
    names = {field.name for field in dataclasses.fields(config_cls)}
    return config_cls(**{k: v for k, v in vars(arguments).items() if k in names})


def _pretrain_images(arguments):
    from keras_mapping.training.image_pretrain import ImagePretrainConfig, pretrain_images

    metrics = pretrain_images(_config(ImagePretrainConfig, arguments),
                              verbose=arguments.verbose)
    print(json.dumps(metrics))


def _pretrain(arguments):
    from keras_mapping.training.pretrain import PretrainConfig, pretrain

    metrics = pretrain(_config(PretrainConfig, arguments), verbose=arguments.verbose)
    print(json.dumps(metrics))


def _shard_corpus(arguments):
    from keras_mapping.data.corpus_shards import shard_corpus

    manifest = shard_corpus(arguments.corpus, arguments.out, shards=arguments.shards,
                            shard_megabytes=arguments.shard_megabytes,
                            on_bad_bytes=arguments.on_bad_bytes)
    print(json.dumps({"out": arguments.out, "shards": len(manifest["shards"]),
                      **{name: manifest[name] for name in ("documents", "sentences", "bytes")}}))


def _add_shard_corpus_verb(verbs):
    from keras_mapping.data.corpus_shards import DEFAULT_SHARD_MEGABYTES

    parser = verbs.add_parser(
        "shard-corpus", help="Write a text corpus as TFRecord shards of sentences (whole "
                             "documents per shard) with a manifest.json of counts, for "
                             "pretrain --corpus DIR; prints the counts as JSON.")
    parser.add_argument("--corpus", nargs="+", required=True, metavar="CORPUS",
                        help="Text files (gzip'd or not) or folders of *.txt and *.txt.gz "
                             "files: one sentence a line, blank lines between documents.")
    parser.add_argument("--out", required=True,
                        help="Folder for the shards (created; must hold no shards yet).")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--shards", type=int, default=None,
                      help="Number of shards, documents dealt to them in turn (at least one "
                           "per worker that will train on them).")
    size.add_argument("--shard-megabytes", type=float, default=None,
                      help="Start a new shard after this many megabytes of records "
                           f"(default: {DEFAULT_SHARD_MEGABYTES}).")
    _add_on_bad_bytes_flag(parser)
    parser.set_defaults(run=_shard_corpus)


def _finetune(arguments):
    from keras_mapping.training import FinetuneConfig, finetune

    config = _config(FinetuneConfig, arguments)
    metrics = finetune(config, verbose=arguments.verbose)
    print(json.dumps(metrics))


def _ensemble(arguments):
    from keras_mapping.training.ensemble import ensemble

    metrics = ensemble(arguments.models, arguments.out, dataset=arguments.dataset,
                       split=arguments.split, data_dir=arguments.data_dir,
                       max_examples=arguments.max_examples,
                       on_bad_bytes=arguments.on_bad_bytes)
    print(json.dumps(metrics))


def _add_ensemble_verb(verbs):
    parser = verbs.add_parser(
        "ensemble", help="Combine model directories fine-tuned for one task (e.g. with "
                         "different --seed) into one model directory that averages their "
                         "predicted probabilities (scores, for regression); prints its "
                         "metrics and each member's as JSON.")
    parser.add_argument("--models", nargs="+", required=True, metavar="MODEL",
                        help="Two or more model directories from finetune: same task, "
                             "preset tokenizer and max_length.")
    parser.add_argument("--out", required=True,
                        help="The ensemble's model directory (must not hold a model).")
    parser.add_argument("--dataset", default=None,
                        help="Data to score members and ensemble on (default: the first "
                             "member's training dataset).")
    parser.add_argument("--split", default="validation", help="Split to score.")
    parser.add_argument("--data-dir", default=None,
                        help="Overrides $KERAS_MAPPING_DATA_DIR (default: the first "
                             "member's).")
    parser.add_argument("--max-examples", type=int, default=None,
                        help="Score only the first N examples.")
    _add_on_bad_bytes_flag(parser)
    parser.set_defaults(run=_ensemble)


def _evaluate(arguments):
    from keras_mapping.training.inference import evaluate

    metrics = evaluate(arguments.model, arguments.dataset, arguments.split,
                       data_dir=arguments.data_dir, max_examples=arguments.max_examples,
                       on_bad_bytes=arguments.on_bad_bytes, strategy=arguments.strategy,
                       skip_bad_images=arguments.skip_bad_images)
    print(json.dumps(metrics))


def _predict_inputs(arguments):
    """`(texts, text_pairs or None)` from the arguments, streamed for `--input`."""
    given = [bool(arguments.texts), bool(arguments.pair), bool(arguments.input)]
    if sum(given) != 1:
        raise ValueError("give texts as arguments, pairs with --pair A B (repeatable), or a "
                         "file with --input (one text a line; two tab-separated texts a line "
                         "for pair models; or a data file whose header names the model's "
                         "columns).")
    if arguments.pair:
        return [a for a, _ in arguments.pair], [b for _, b in arguments.pair]
    if not arguments.input:
        return arguments.texts, None
    if not os.path.isfile(arguments.input):
        raise FileNotFoundError(f"--input file '{arguments.input}' does not exist.")
    from keras_mapping.data.predict_input import predict_inputs
    from keras_mapping.tasks.model_directory import read_task

    task = read_task(arguments.model)
    return predict_inputs(arguments.input, getattr(task, "columns", None), task.pairs,
                          arguments.on_bad_bytes)


def _predict(arguments):
    from keras_mapping.training.inference import predict

    texts, text_pairs = _predict_inputs(arguments)
    for row in predict(arguments.model, texts, text_pairs, strategy=arguments.strategy):
        print(json.dumps(row, ensure_ascii=False))


def _export(arguments):
    from keras_mapping.export import artifact_bytes, export_model

    quantize = None if arguments.quantize == "none" else arguments.quantize
    artifact = export_model(arguments.model, arguments.out, format=arguments.format,
                            overwrite=arguments.overwrite, quantize=quantize)
    print(json.dumps({"format": arguments.format, "quantization": quantize,
                      "artifact": str(artifact), "artifact_bytes": artifact_bytes(artifact)}))


def _add_model_verbs(verbs):
    """The verbs that take a fine-tuned model directory: evaluate, predict, export."""
    evaluate = verbs.add_parser(
        "evaluate", help="Evaluate a model directory; prints the task's metrics as JSON "
                         "(accuracy, f1, macro_f1, mcc; pearson, spearman, mse; micro_f1, "
                         "macro_f1; entity f1, precision, recall) with "
                         "examples_per_second as the last line.")
    evaluate.add_argument("--model", required=True, help="Model directory from finetune.")
    evaluate.add_argument("--dataset", default="sst2",
                          help="sst2, conll2003, a folder with split files (or image "
                               "folders), a TFDS name, or one split file (DIR/test.tsv: "
                               "that file is scored, --split is not used).")
    evaluate.add_argument("--split", default="validation", help="Split to evaluate.")
    evaluate.add_argument("--data-dir", default=None,
                          help="Overrides $KERAS_MAPPING_DATA_DIR.")
    evaluate.add_argument("--max-examples", type=int, default=None,
                          help="Evaluate only the first N examples.")
    evaluate.add_argument("--skip-bad-images", action="store_true",
                          help="Image folders: leave unreadable images out (counted in "
                               "skipped_images) instead of stopping with their names.")
    _add_inference_flags(evaluate)
    evaluate.set_defaults(run=_evaluate)

    predict = verbs.add_parser(
        "predict", help="Apply a model to texts, text pairs or image files; prints one JSON "
                        "line per example with the task's prediction (label and "
                        "probabilities; score; labels above their thresholds).")
    predict.add_argument("--model", required=True, help="Model directory from finetune.")
    predict.add_argument("--input", default=None,
                         help="A UTF-8 file with one text per line, or two tab-separated "
                              "texts per line for pair models; or a .tsv, .csv or .jsonl "
                              "file whose header names the columns the model was trained "
                              "on (a split of its dataset). Streamed.")
    predict.add_argument("--pair", nargs=2, action="append", metavar=("TEXT", "TEXT_PAIR"),
                         help="A text pair, for models trained on pairs (repeatable).")
    predict.add_argument("texts", nargs="*",
                         help="Texts to predict (image files, for image models).")
    _add_inference_flags(predict)
    predict.set_defaults(run=_predict)

    export = verbs.add_parser(
        "export", help="Export a model directory as one artifact that takes raw text (or "
                       "encoded images): a TF Serving SavedModel (DIR2/1/), a .keras archive "
                       "or a TFLite file (images: float pixels in).")
    export.add_argument("--model", required=True, help="Model directory from finetune.")
    export.add_argument("--out", required=True, help="Export directory (must not exist).")
    export.add_argument("--format", default="savedmodel", help="savedmodel, keras or tflite "
                        "(default: %(default)s).")
    export.add_argument("--overwrite", action="store_true",
                        help="Replace an existing export directory.")
    export.add_argument("--quantize", default="none", choices=("none", "int8", "float16"),
                        help="Post-training quantization (default: %(default)s). tflite: "
                             "int8 (dynamic range: int8 weights, int8 matmuls) or float16 "
                             "(float16 weights); savedmodel: int8 (Keras' model.quantize, "
                             "text models except token classification); keras: none.")
    export.set_defaults(run=_export)


def build_parser():
    from keras_mapping.training.finetune import FinetuneConfig
    from keras_mapping.training.image_pretrain import ImagePretrainConfig
    from keras_mapping.training.pretrain import PretrainConfig

    parser = argparse.ArgumentParser(
        prog="keras-mapping",
        description="BERT-family models for Keras 3: pretrain, map, transfer.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    demo = verbs.add_parser(
        "demo", help="Tokenize text, run it through a pretrained BERT and show shapes, "
                     "attention and sentence similarities.")
    demo.add_argument("--preset", default="minilm_l6",
                      help="Preset name or BERT-layout directory (default: %(default)s).")
    demo.add_argument("--train-examples", type=int, default=3000,
                      help="SST-2 sentences for the shortened fine-tuning run; 0 skips it "
                           "(default: %(default)s).")
    demo.add_argument("--out", default="saved_models/demo_sst2",
                      help="Model directory of the demo run (replaced each time).")
    demo.set_defaults(run=_demo)

    presets = verbs.add_parser("presets", help="List named presets and where their files are.")
    presets.set_defaults(run=_presets)

    _add_recipe_verb(
        verbs, "finetune", FinetuneConfig, _finetune,
        "Fine-tune a preset for a text task (classification of texts or text pairs, "
        "regression, multi-label, token classification) or an image task (image folders); "
        "writes a model directory and prints its validation metrics as JSON.")
    _add_recipe_verb(
        verbs, "pretrain", PretrainConfig, _pretrain,
        "Pretrain (masked LM, optionally with next-sentence prediction) on unlabeled text; "
        "writes a BERT-layout preset directory that finetune --preset reads, and prints "
        "held-out metrics as JSON.")
    _add_shard_corpus_verb(verbs)
    _add_recipe_verb(
        verbs, "pretrain-images", ImagePretrainConfig, _pretrain_images,
        "Pretrain an image backbone on unlabelled images (SimCLR: two augmented views of "
        "each image, the rest of the batch as negatives); writes a Hugging Face-layout "
        "directory that finetune --preset reads, and prints held-out metrics as JSON.")

    _add_ensemble_verb(verbs)
    _add_model_verbs(verbs)

    from keras_mapping.viz.cli import add_plot_parser

    add_plot_parser(verbs)
    return parser


def main(argv=None):
    # The quiet TensorFlow start-up of the command happens earlier, in `import keras_mapping`
    # (keras_mapping/cli/startup.py): the package imports TensorFlow before this module runs.
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    arguments = build_parser().parse_args(argv)
    try:
        arguments.run(arguments)
    except (ValueError, OSError, FloatingPointError) as error:  # OSError: files, lost workers
        print(f"keras-mapping {arguments.verb}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
