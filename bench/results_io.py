"""What every benchmark does with its figures: summarise samples the way ``table.py`` reads
them, and write the result file (whole or not at all) and show it."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def summary(values: Iterable[float]) -> dict[str, Any]:
    """Median, worst and every run of a benchmark's samples."""
    runs = list(values)
    return {"median": statistics.median(runs), "max": max(runs), "runs": runs}


def write(out: Path, result: Mapping[str, Any], indent: int = 2) -> None:
    """Write ``result`` as JSON to ``out`` through a temporary name (an interrupted
    benchmark leaves the previous file, never half of one), then print it."""
    text = json.dumps(result, indent=indent) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(text)
    partial.replace(out)
    print(text, end="")
