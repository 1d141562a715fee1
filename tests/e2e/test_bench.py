"""``statsaga bench`` end to end at its smallest plan: it starts its own stack, runs every
phase and writes the JSON, the Markdown summary and both plots; the numbers are not judged
here (speed is for the benchmark itself), what users rely on is: each phase measured
something, and the fault phase converged with every record exact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.runtime.lifeline import die_with_parent

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n"


def test_bench_smoke_writes_results_summary_and_plots(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STATSAGA_", "RAY_ADDRESS"))}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.entrypoints.cli",
            "bench",
            "--plan",
            "smoke",
            "--out",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        # It starts a stack of its own, tied to it as ours are to this run.
        preexec_fn=die_with_parent(),
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert "6/6 10% storage faults" in run.stderr  # the progress bars, one per phase
    [result] = tmp_path.glob("*-e2e-smoke.json")
    out = json.loads(result.read_text())
    assert out["floor"]["player_updates_per_s"] > 0
    assert out["end_to_end"]["player_updates_per_s"] > 0
    assert out["end_to_end"]["unfinished"] == 0
    assert out["end_to_end"]["ratio_to_floor"] > 0
    assert out["open_loop"]["ingest"]["count"] > 0
    assert out["open_loop"]["time_to_consistency"]["count"] > 0
    assert out["reads"]["warm"]["count"] > 0
    assert out["reads"]["cold"]["count"] == 20
    boards = out["reads"]["leaderboard"]
    assert boards["count"] > 0 and boards["largest_board"] > 0  # the boards were fed
    assert [p["shards"] for p in out["scaling"]] == [2]
    assert all(p["player_updates_per_s"] > 0 for p in out["scaling"])
    faults = out["faults"]
    # On failure, the log of each saga that never finished says where it stopped.
    stuck = json.dumps(faults["unfinished_sagas"], indent=1)[:6000]
    assert faults["converged"] and faults["unfinished"] == 0, stuck
    assert faults["records_checked"] > 0 and faults["records_wrong"] == 0
    assert out["end_to_end"]["cores"]  # where the CPU went, by process kind
    summary = result.with_suffix(".md").read_text()
    assert "of the floor" in summary and "| time to consistency |" in summary
    assert "| read, leaderboard page |" in summary
    for plot in ("latency", "scaling"):
        png = tmp_path / f"{result.stem}-{plot}.png"
        assert png.read_bytes()[:8] == PNG
        assert f"({png.name})" in summary
