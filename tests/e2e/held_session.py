"""A test session for ``test_no_orphans.py`` to kill, never part of the suite (the name
does not match ``test_*.py``, and it skips without ``STATSAGA_HELD_PIDS``): it starts
the session's Azurite, brokers and Ray head, an api + worker with their actor pools and
``statsaga run`` with its embedded Ray, writes their PIDs to that file, then waits to be killed."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from devstack.processes import Azurite
from devstack.ray_cluster import RayHead
from tests.e2e.conftest import Service, StartScenario

HELD_PIDS = "STATSAGA_HELD_PIDS"


@pytest.mark.skipif(HELD_PIDS not in os.environ, reason="run by test_no_orphans.py only")
def test_hold(
    azurite: Azurite, ray_head: RayHead, start_scenario: StartScenario, service: Service
) -> None:
    scenario = start_scenario("held", "")
    assert scenario.api.proc is not None and scenario.worker.proc is not None
    assert service.proc is not None
    pids = {
        "azurite": azurite.proc.pid,
        "broker": scenario.broker.pid,
        "ray head": ray_head.proc.pid,
        "api": scenario.api.proc.pid,
        "worker": scenario.worker.proc.pid,
        "run": service.proc.pid,
    }
    path = Path(os.environ[HELD_PIDS])
    path.with_suffix(".tmp").write_text(json.dumps(pids))
    path.with_suffix(".tmp").rename(path)  # whole, or not at all
    time.sleep(600)
