"""`keras-mapping`: the command line. Each verb parses flags and calls the public API."""

import argparse
import os
import sys


def _demo(arguments):
    from keras_mapping.examples.tour import run_tour

    run_tour(preset=arguments.preset)


def _presets(arguments):
    from keras_mapping.checkpoints.presets import PRESETS, local_copy

    for name, preset in PRESETS.items():
        local = local_copy(preset)
        where = f"local: {local}" if local else f"hub: {preset.hub_id}"
        print(f"{name:12s} {preset.description}  [{where}]")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-mapping",
        description="BERT-family models for Keras 3: pretrain, map, transfer.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    demo = verbs.add_parser(
        "demo", help="Tokenize text, run it through a pretrained BERT and show shapes, "
                     "attention and sentence similarities.")
    demo.add_argument("--preset", default="minilm_l6",
                      help="Preset name or BERT-layout directory (default: %(default)s).")
    demo.set_defaults(run=_demo)

    presets = verbs.add_parser("presets", help="List named presets and where their files are.")
    presets.set_defaults(run=_presets)
    return parser


def main(argv=None):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    arguments = build_parser().parse_args(argv)
    try:
        arguments.run(arguments)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"keras-mapping {arguments.verb}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
