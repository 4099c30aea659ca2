"""CIFAR-10 image folders for the image benchmarks, extracted from the shared JPEG tar into a
folder of the caller's (never into the project).

The transfer experiment's splits (issue 18):
- `source/`: airplane, automobile, bird, cat, deer; `train/` all 25,000 training images,
  `validation/` their 5,000 test images (used only to keep the best source weights);
- `target/`: dog, frog, horse, ship, truck; `train/` 100 training images per class,
  `validation/` 50 other training images per class (best weights), `test/` their 5,000 test
  images (the reported accuracy);
- `target_all_labels/`: the target with all its labels, a ceiling for transfer: `train/`
  the 4,850 training images per class outside `target/validation/`, which it shares, and
  `test/` the target's test images;
- `unlabeled/`: all 50,000 training images, for self-supervised pretraining;
- `full/`: all ten classes, `train/` 50,000 and `validation/` the 10,000 test images.
The per-class choices are seeded, so every run of the benchmark sees the same images.

Usage: python bench/cifar_folders.py OUT_DIR [--tar PATH] [--seed 0]
"""

import argparse
import os
import random
import tarfile
from pathlib import Path

SOURCE = ("airplane", "automobile", "bird", "cat", "deer")
TARGET = ("dog", "frog", "horse", "ship", "truck")
TARGET_TRAIN_PER_CLASS, TARGET_VALIDATION_PER_CLASS = 100, 50


def default_tar():
    shared = Path(os.environ.get("KERAS_MAPPING_DATA_DIR", Path(__file__).parents[2] /
                                 "shared" / "data"))
    return shared / "cifar10" / "cifar10_jpeg.tar"


def extract(tar_path, out):
    """Extracts the tar into `out/all/` once (`train/<class>/`, `test/<class>/`)."""
    everything = out / "all"
    if (everything / ".complete").exists():
        return everything
    with tarfile.open(tar_path) as archive:
        archive.extractall(everything, filter="data")
    (everything / ".complete").touch()
    return everything


def link_files(files, folder):
    folder.mkdir(parents=True, exist_ok=True)
    for path in files:
        target = folder / path.name
        if not target.exists():
            target.symlink_to(path)


def class_files(everything, split, name):
    return sorted((everything / split / name).glob("*.jpg"))


def build(out, tar_path, seed=0):
    """Lays out every folder the benchmarks read; returns `out`."""
    out = Path(out)
    everything = extract(tar_path, out)
    rng = random.Random(seed)
    for name in SOURCE + TARGET:
        train, test = class_files(everything, "train", name), class_files(everything, "test", name)
        link_files(train, out / "unlabeled" / name)
        link_files(train, out / "full" / "train" / name)
        link_files(test, out / "full" / "validation" / name)
        if name in SOURCE:
            link_files(train, out / "source" / "train" / name)
            link_files(test, out / "source" / "validation" / name)
            continue
        chosen = rng.sample(train, TARGET_TRAIN_PER_CLASS + TARGET_VALIDATION_PER_CLASS)
        link_files(chosen[:TARGET_TRAIN_PER_CLASS], out / "target" / "train" / name)
        link_files(chosen[TARGET_TRAIN_PER_CLASS:], out / "target" / "validation" / name)
        link_files(test, out / "target" / "test" / name)
        held_out = chosen[TARGET_TRAIN_PER_CLASS:]
        all_labels = out / "target_all_labels"
        link_files(sorted(set(train) - set(held_out)), all_labels / "train" / name)
        link_files(held_out, all_labels / "validation" / name)
        link_files(test, all_labels / "test" / name)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--tar", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build(args.out, args.tar or default_tar(), args.seed))


if __name__ == "__main__":
    main()
