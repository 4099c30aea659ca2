"""Parameter-efficient fine-tuning on SST-2 with `minilm_l6` (issue 6's method table).

Usage (from the repository root, after `make setup`):

    .venv/bin/python bench/peft_sst2.py [--methods lora,adapter,full,bitfit,prefix] [--out DIR]

Each method is one command, `keras-mapping finetune --preset minilm_l6 --dataset sst2
--method M --out DIR` with every other setting at its default (the parameter-efficient
methods default to 4 epochs at their own learning rates, see `METHOD_RECIPES`), followed by
`keras-mapping evaluate` on the saved model (for LoRA: the merged one). A row records the
trainable parameters, the size of `task_weights.safetensors`, the wall time of the run and
the validation accuracy, and the table goes to BENCHMARKS.md.
"""

import argparse
import json
from pathlib import Path

from finetune_sst2 import RESULTS, ROOT, finetune_part
from results_table import record_result

COLUMNS = ("method", "command", "trainable_parameters", "trainable_share", "task_file_kib",
           "finetune_wall_seconds", "train_examples_per_second", "accuracy", "measured_at")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="lora,adapter,full,bitfit,prefix")
    parser.add_argument("--out", default=str(ROOT / "saved_models" / "peft_bench"))
    arguments = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    for method in arguments.methods.split(","):
        out = Path(arguments.out) / method
        result = finetune_part(method, out, ["--method", method])
        metrics = json.loads((out / "metrics.json").read_text())
        result.update(
            method=method,
            trainable_parameters=f"{metrics['trainable_parameters']:,}",
            trainable_share=metrics["trainable_parameters"] / metrics["total_parameters"],
            total_parameters=metrics["total_parameters"],
            task_file_kib=round(metrics["task_weights_bytes"] / 1024),
            best_round=metrics["best_round"],
        )
        record_result("peft_sst2", method, result, COLUMNS,
                      percent_columns=("trainable_share", "accuracy"))


if __name__ == "__main__":
    main()
