"""Stored benchmark results rendered as a markdown table between markers in BENCHMARKS.md."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "BENCHMARKS.md"


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
            value = row.get(column, "")
            if column in percent_columns and value != "":
                value = f"{100 * value:.2f}%"
            cells.append(f"`{value}`" if column == "command" else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    text = BENCHMARKS.read_text()
    if begin not in text:
        text += f"\n{begin}\n{end}\n"
    start, stop = text.index(begin) + len(begin), text.index(end)
    BENCHMARKS.write_text(text[:start] + "\n" + "\n".join(lines) + "\n" + text[stop:])
