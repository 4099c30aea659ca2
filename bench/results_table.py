"""Stored benchmark results rendered as a markdown table between markers in BENCHMARKS.md."""

import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "BENCHMARKS.md"
RESULTS = ROOT / "bench" / "results"


def cpu_class():
    """The CPU class a speed figure belongs to, from the flags that decide our kernels:
    "amx" (AMX tiles: bf16 matmuls on them), "avx512-bf16" (native bf16 dot products) or
    "avx2" (neither). Speeds of different classes go in different tables."""
    from keras_mapping.training.precision import cpu_flags  # keeps this module stdlib-only

    flags = cpu_flags()
    if "amx_tile" in flags:
        return "amx"
    return "avx512-bf16" if "avx512_bf16" in flags else "avx2"


def cpu_name():
    """The CPU's model name as /proc/cpuinfo gives it, or "unknown"."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in text.splitlines()
                 if line.startswith("model name")), "unknown")


def cpu_description(flags=("avx512_bf16", "amx_tile")):
    """The CPU's model name and whether it has each of `flags` (by default the two that
    decide our bf16 kernels), as every result row states it."""
    from keras_mapping.training.precision import cpu_flags  # keeps this module stdlib-only

    present = cpu_flags()
    marks = ", ".join(f"{flag} {'yes' if flag in present else 'no'}" for flag in flags)
    return f"{cpu_name()} ({marks})"


def shown_command(arguments):
    """`keras-mapping ARGUMENTS` as a user types it from the repository root."""
    return "keras-mapping " + " ".join(str(part).replace(f"{ROOT}/", "") for part in arguments)


def write_table(name, result_files, columns, percent_columns=()):
    """Replaces the text between `<!-- name:begin -->` and `<!-- name:end -->` (appended to
    BENCHMARKS.md when missing) with one row per result file, in file-name order."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for path in sorted(result_files):
        row = json.loads(Path(path).read_text())
        cells = []
        for column in columns:
            value = row.get(column)
            value = "" if value is None else value
            if column in percent_columns and value != "":
                value = f"{100 * value:.2f}%"
            cells.append(f"`{value}`" if column == "command" else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    text = BENCHMARKS.read_text()
    if begin not in text:
        text += f"\n{begin}\n{end}\n"
    start, stop = text.index(begin) + len(begin), text.index(end)
    BENCHMARKS.write_text(text[:start] + "\n" + "\n".join(lines) + "\n" + text[stop:])


def record_result(name, part, result, columns, percent_columns=()):
    """Stores one benchmark row as `bench/results/{name}_{part}.json` (stamped with the time
    unless it carries its own `measured_at`), prints it, and re-renders the `name` table."""
    result.setdefault("measured_at", time.strftime("%Y-%m-%d %H:%M"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}_{part}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result), flush=True)
    write_table(name, RESULTS.glob(f"{name}_*.json"), columns, percent_columns)
