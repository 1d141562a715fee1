"""``statsaga bench --profile``: each run's profile is its own."""

from __future__ import annotations

from pathlib import Path

from bench.profile import hottest, sampling


def test_a_profile_holds_only_the_stacks_of_its_own_run(tmp_path: Path) -> None:
    stale = tmp_path / "GameActor_actors-1.txt"
    stale.write_text("MainThread;gone (old.py:1) 40\n")
    assert "GameActor_actors" in hottest(tmp_path)
    with sampling(tmp_path, 0):  # this test process has no profiled descendants
        pass
    assert not stale.exists()
    assert hottest(tmp_path) == {}
