"""The live OpenAPI document, fuzzed: schemathesis generates requests for every operation
(examples, boundary values, then random valid and invalid data) against ``statsaga run``,
and checks that nothing answers 5xx, that every status code, header and body is the one
documented, that invalid data is refused and that operations need their key.

Not checked: that every schema-valid match is accepted. A match's cross-field rules
(``ended_at`` after ``started_at`` and not in the future, ``headshots <= kills``, events
naming players of the match) are beyond JSON Schema, so generated matches that break them
are rightly refused with 422."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.runtime.lifeline import die_with_parent
from tests.e2e.conftest import KEYS, Service

pytestmark = pytest.mark.e2e
MIN_CASES = 500
MAX_EXAMPLES = os.environ.get("STATSAGA_FUZZ_EXAMPLES", "15")  # per operation and phase
SEED = os.environ.get("STATSAGA_FUZZ_SEED", "20261123")


def test_the_live_openapi_holds_under_500_generated_cases(service: Service, tmp_path: Path) -> None:
    report = tmp_path / "schemathesis.json"
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{service.base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {KEYS['admin']}",
        "--phases",
        "examples,coverage,fuzzing",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        SEED,
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    run = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        preexec_fn=die_with_parent(),
    )
    output = run.stdout[-20_000:] + run.stderr[-5_000:]
    assert report.exists(), output
    result = json.loads(report.read_text())
    assert result["failures"] == [] and result["errors"] == [], output
    assert run.returncode == 0, output
    operations = result["operations"]
    assert operations["tested"] == operations["total"] >= 13, operations
    assert result["test_cases"]["generated"] >= MIN_CASES, result["test_cases"]
