"""What every benchmark shares: a progress bar on stderr, and writing its results as
JSON and Markdown under ``bench/results/`` with the machine they were measured on."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def progress(label: str, done: int, total: int) -> None:
    """Draw ``done`` of ``total`` after ``label``; a newline once it is full."""
    width = 30
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r{label:<28} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def write_results(
    name: str, title: str, outcome: dict[str, Any], table: str, out: Path = RESULTS
) -> Path:
    """Write ``<date>-<name>.json`` (``outcome`` + machine + time) and ``.md`` (``title``
    and ``table``) in ``out``, print the table, and return the JSON's path."""
    outcome["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }
    outcome["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{datetime.now(UTC):%Y-%m-%d}-{name}.json"
    path.write_text(json.dumps(outcome, indent=2) + "\n")
    path.with_suffix(".md").write_text(f"# {title}\n\n{table}\n")
    print(table)
    print(f"\nwritten: {path} and {path.with_suffix('.md')}")
    return path
