"""What operators read: the service's output is JSON lines; the lines of a match's saga,
written in the GameActors and forwarded by Ray, carry its match id; no API key is ever
written, even at DEBUG."""

from __future__ import annotations

import json
import random
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.domain.ratings import is_rated
from app.domain.validation import parse_match
from devstack.processes import Azurite, free_port
from tests.conftest import BrokerFactory
from tests.e2e.conftest import KEYS, Service, service_env
from tests.support.client import StatsClient
from tests.support.matches import random_match
from tests.support.servicebus import project_queues

pytestmark = pytest.mark.e2e
CORE = {"ts", "level", "logger", "msg", "process"}


def parse(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The JSON lines of a log, and the lines that are not JSON objects."""
    records, others = [], []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        elif line.strip():
            others.append(line)
    return records, others


def saga_lines(service: Service, match_id: str, timeout_s: float = 15.0) -> list[dict[str, Any]]:
    """The saga's lines about ``match_id`` once its completion is in the log (Ray forwards
    the actors' output a moment after they write it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        records, _ = parse(service.output())
        mine = [
            r for r in records if r.get("logger") == "app.application.sagas" and match_id in str(r)
        ]
        if any(r["msg"].endswith("-> completed") for r in mine):
            return mine
        if time.monotonic() > deadline:
            raise AssertionError(f"no completion of {match_id} in the log:\n{mine}")
        time.sleep(0.3)


def test_the_saga_s_lines_are_json_and_carry_the_match_id(
    service: Service, client: StatsClient
) -> None:
    run = uuid.uuid4().hex[:6]
    match = random_match(random.Random(11), f"m-{run}", [f"p-{run}-{i}" for i in range(4)], 4)
    mid = match["match_id"]
    assert client.post_match(match).status_code == 202
    assert client.wait_finished([mid]) == {mid: "completed"}

    mine = saga_lines(service, mid)
    # A rated match's start is saved first, with its rating changes, then the round that
    # completes it; an unrated one's start is saved with that round.
    rated = is_rated(parse_match(match, now=None))
    want = ["saga accepted -> running", "saga running -> completed"]
    assert [r["msg"] for r in mine if "->" in r["msg"]] == (
        want if rated else ["saga accepted -> completed"]
    )
    # Written by a GameActor (not this process), the match id a field of every line.
    assert all(r["match_id"] == mid and r["process"].startswith("game-") for r in mine), mine
    records, others = parse(service.output())
    for r in records:
        assert set(r) >= CORE, r
        if mid in r["msg"]:
            assert r.get("match_id") == mid, r
    # Nothing about the match was written other than as JSON (no "(GameActor pid=…)"
    # prefix, no text formatter), and none of our loggers wrote text.
    assert [line for line in others if mid in line] == []
    assert [line for line in others if "statsaga" in line or " app." in line] == []


def test_no_api_key_is_logged_even_at_debug(
    azurite: Azurite, broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    broker = broker_factory(project_queues(lock_s=10), name="logs-broker")
    port = free_port()
    env = {
        **service_env(azurite, broker, tmp_path),
        "STATSAGA_PORT": str(port),
        "STATSAGA_LOG_LEVEL": "DEBUG",
        "STATSAGA_ACCESS_LOG": "true",
    }
    # The api role alone: no Ray to wait for (reads through the grains answer 503).
    api = Service("api", env, tmp_path / "api.log", f"http://127.0.0.1:{port}").start()
    wrong_key = f"not-a-key-{uuid.uuid4().hex}"
    try:
        api.wait_ready(60)
        client = StatsClient(api.base_url, KEYS)
        run = uuid.uuid4().hex[:6]
        match = random_match(random.Random(12), f"m-{run}", [f"p-{run}-0", f"p-{run}-1"], 2)
        assert client.post_match(match).status_code == 202
        assert client.get_match(match["match_id"]).status_code == 200
        assert client.stats(f"p-{run}-0").status_code == 503
        admin = client.http.get("/v1/admin/sagas", headers=client._auth("admin"))
        assert admin.status_code == 200
        wrong = httpx.get(
            f"{api.base_url}/v1/matches/{match['match_id']}",
            headers={"Authorization": f"Bearer {wrong_key}"},
        )
        assert wrong.status_code == 401
        client.http.close()
    finally:
        api.stop()
    text = api.output()
    records, _ = parse(text)
    # DEBUG was on: the settings were dumped, the access log and the SDKs wrote.
    assert any(r["msg"].startswith("settings: ") for r in records)
    assert any(r["logger"] == "uvicorn.access" and "401" in r["msg"] for r in records)
    assert any(r["logger"].startswith("azure.") for r in records)
    for key in [*KEYS.values(), wrong_key]:
        assert key not in text
    # The submission's lines (storage calls included) name the match.
    assert any(
        r.get("match_id") == match["match_id"] and r["logger"].startswith("azure.") for r in records
    )
