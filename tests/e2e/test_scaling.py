"""Operators resize the pools while matches flow: separate api and worker processes on a
Ray head, resizes through ``PUT /v1/admin/pools/{pool}``; every saga completes and every
record is exact (nothing lost or counted twice while players move between shards)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.runtime.lifeline import die_with_parent
from devstack.processes import Azurite
from tests.e2e.conftest import Scenario
from tests.support.runs import new_matches, post_all, saga_events, verify, wait_states

pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.ray, pytest.mark.timeout(900)]


def resize(s: Scenario, pool: str, size: int) -> dict:
    response = s.client.http.put(
        f"/v1/admin/pools/{pool}",
        json={"size": size},
        headers=s.client._auth("admin"),
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def scaling(clean_scenario: Scenario) -> Scenario:
    """The session's scenario without faults (shared with the chaos tests): pools of 2 and 2
    when it starts, whatever the tests here find (they resize relative to it)."""
    return clean_scenario


def test_resizing_the_player_pool_2_6_3_while_200_matches_flow_ends_exact(
    scaling: Scenario, azurite: Azurite
) -> None:
    s = scaling
    # Players recur (records add up); small matches keep the run short: what is tested is
    # routing during the resizes, not fan-out width.
    matches = new_matches(200, seed=17, population=100, max_size=8)
    # A future, not a bare thread: a POST that fails must fail the test, not leave it
    # waiting for matches that were never accepted.
    poster = ThreadPoolExecutor(1)
    posting = poster.submit(post_all, s.client, matches, 3)
    grown = resize(s, "player", 6)  # while the POSTs and their sagas go on
    ids = [m["match_id"] for m in matches]
    listed = s.client.http.get(
        "/v1/admin/sagas", params={"limit": 1000}, headers=s.client._auth("admin")
    ).json()["sagas"]
    open_sagas = [x for x in listed if x["match_id"] in ids]  # the scenario is shared
    assert not posting.done() or open_sagas, "the resize came after the run: it proves nothing"
    assert grown["pools"]["player"]["size"] == 6
    assert {m["index"] for m in grown["pools"]["player"]["members"]} == set(range(6))
    shrunk = resize(s, "player", 3)
    assert shrunk["last_resize"] | {"from": 6, "to": 3} == shrunk["last_resize"]
    posting.result()
    poster.shutdown()

    states = wait_states(s.client, dict.fromkeys(ids, "completed"), timeout_s=600)
    assert Counter(states.values()) == {"completed": len(ids)}
    verify(s, azurite, ids)
    kinds = saga_events(s.client, ids)
    assert kinds["SagaStarted"] == len(ids) and kinds["SagaCompleted"] == len(ids), kinds

    pools = s.client.http.get("/v1/admin/pools", headers=s.client._auth("admin")).json()
    members = pools["pools"]["player"]["members"]
    assert [m["index"] for m in members] == [0, 1, 2]
    assert all("error" not in m for m in members), members
    print(f"\nscaling: saga events {dict(kinds)}; pools {pools['last_resize']}")


def test_pool_endpoints_refuse_bad_sizes_and_other_roles(scaling: Scenario) -> None:
    s = scaling
    admin = s.client._auth("admin")
    before = s.client.http.get("/v1/admin/pools", headers=admin).json()
    for body, field in (({"size": 0}, "size"), ({"size": 2000}, "size"), ({}, "size")):
        response = s.client.http.put("/v1/admin/pools/player", json=body, headers=admin)
        assert response.status_code == 422 and field in response.text, response.text
    # Beyond the deployment's STATSAGA_MAX_POOL_SIZE (64 by default), below the pool's own.
    response = s.client.http.put("/v1/admin/pools/game", json={"size": 65}, headers=admin)
    assert response.status_code == 422 and "between 1 and 64" in response.text
    assert (
        s.client.http.put("/v1/admin/pools/other", json={"size": 2}, headers=admin).status_code
        == 422
    )
    for role in ("ingest", "read"):
        headers = s.client._auth(role)
        assert s.client.http.get("/v1/admin/pools", headers=headers).status_code == 403
        put = s.client.http.put("/v1/admin/pools/player", json={"size": 3}, headers=headers)
        assert put.status_code == 403
    after = s.client.http.get("/v1/admin/pools", headers=admin).json()
    assert after["version"] == before["version"]  # nothing refused was applied


def test_the_cli_finds_the_dev_cluster_and_resizes(scaling: Scenario, tmp_path: Path) -> None:
    # As after `make run`: no address in the environment, the head's in .data/ray.env.
    (tmp_path / "ray.env").write_text(
        "".join(f"{k}={v}\n" for k, v in scaling.env.items() if k.startswith("RAY_"))
    )
    env = {k: v for k, v in scaling.env.items() if not k.startswith("RAY_")}
    env["STATSAGA_DATA_DIR"] = str(tmp_path)

    def cli(*args: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "app.entrypoints.cli", "pools", *args, "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=die_with_parent(),
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout)

    before = cli()
    after = cli("resize", "game", str(before["pools"]["game"]["size"] + 1))
    assert after["pools"]["game"]["size"] == before["pools"]["game"]["size"] + 1
    assert after["version"] == before["version"] + 1
