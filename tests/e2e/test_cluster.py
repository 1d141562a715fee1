"""statsaga on a real two-node Ray cluster (a head and a second node on this machine, each
with its own raylet): the pools spread over both nodes; the second node's raylet is killed
mid-run; the pools come back on the head and every match completes, records exact."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.processes import Azurite
from devstack.ray_cluster import RayHead, RayNode, start_ray_head, start_ray_node
from tests.e2e.conftest import Scenario, StartScenario
from tests.support.runs import new_matches, post_all, verify, wait_states

pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.ray, pytest.mark.timeout(900)]
# The GCS declares a node dead after period x threshold (~1.5 s here, ~15 s by default):
# read by the head, so they are set on it.
FAST_HEALTH = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "500",
    "RAY_health_check_failure_threshold": "3",
}


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayHead]:
    """This module's head (it replaces the shared one): fast node-death detection."""
    temp = Path(tempfile.mkdtemp(prefix="sgray-"))
    logs = tmp_path_factory.mktemp("cluster")
    head = start_ray_head(temp, num_cpus=2, log=logs / "head.log", env=FAST_HEALTH)
    try:
        yield head
    finally:
        head.stop()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def second_node(ray_head: RayHead, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayNode]:
    temp = Path(tempfile.mkdtemp(prefix="sgray2-"))
    log = tmp_path_factory.mktemp("node2") / "node2.log"
    node = start_ray_node(ray_head, temp, num_cpus=1, resources={"node2": 1}, log=log)
    try:
        yield node
    finally:
        node.stop()
        shutil.rmtree(temp, ignore_errors=True)


def pools(s: Scenario) -> dict:
    response = s.client.http.get("/v1/admin/pools", headers=s.client._auth("admin"), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def nodes_of(described: dict) -> Counter[str]:
    members = [m for view in described["pools"].values() for m in view["members"]]
    assert all("error" not in m for m in members), members
    return Counter(m["node_id"] for m in members)


def test_pools_spread_over_two_nodes_and_survive_losing_one(
    start_scenario: StartScenario, second_node: RayNode, azurite: Azurite
) -> None:
    s = start_scenario("cluster", "", STATSAGA_PLAYER_POOL_SIZE="4", STATSAGA_GAME_POOL_SIZE="2")
    before = nodes_of(pools(s))
    assert len(before) == 2, f"pools on one node only: {before}"

    matches = new_matches(120, seed=23, population=80)
    posting = threading.Thread(target=post_all, args=(s.client, matches, 3))
    posting.start()
    time.sleep(4)  # sagas in flight on both nodes
    open_sagas = s.client.http.get(
        "/v1/admin/sagas", params={"limit": 1000}, headers=s.client._auth("admin")
    ).json()["sagas"]
    assert posting.is_alive() or open_sagas, "the node died after the run: it proves nothing"
    raylet = second_node.raylet_pid()
    assert raylet is not None, "no raylet found for the second node"
    os.kill(raylet, signal.SIGKILL)  # the machine is gone, as far as Ray can tell
    posting.join()

    ids = [m["match_id"] for m in matches]
    states = wait_states(s.client, dict.fromkeys(ids, "completed"), timeout_s=600)
    assert Counter(states.values()) == {"completed": len(ids)}
    verify(s, azurite, ids)

    after = nodes_of(pools(s))  # every member answers again, all on the surviving node
    # 4 player shards, 2 GameActors and the board actor (STATSAGA_BOARD_ACTORS: 1).
    assert len(after) == 1 and sum(after.values()) == 7, after
    assert set(after) < set(before)
    print(f"\ncluster: members per node before {dict(before)}, after {dict(after)}")
