"""Separate ``api`` and ``worker`` processes over a Ray head and the local Service Bus
broker: the API keeps accepting while the worker is dead, and nothing is lost when the
worker or the broker is killed."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from devstack.processes import Azurite, free_port
from devstack.ray_cluster import RayHead
from sbemu.launcher import LocalBroker
from tests.conftest import BrokerFactory
from tests.e2e.conftest import KEYS, Service, service_env, stop_all
from tests.support.client import StatsClient, record_problems
from tests.support.matches import random_match
from tests.support.raypools import kill_pools_on
from tests.support.servicebus import project_queues

pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.timeout(600)]
WORKER_UP = "statsaga worker is up"


@dataclass
class Roles:
    api: Service
    worker: Service
    broker: LocalBroker
    client: StatsClient


@pytest.fixture(scope="module")
def roles(
    azurite: Azurite,
    broker_factory: BrokerFactory,
    ray_head: RayHead,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Roles]:
    data = tmp_path_factory.mktemp("roles")
    # A short lock: the messages a killed worker held come back within seconds.
    broker = broker_factory(project_queues(lock_s=10), name="roles-broker")
    namespace = f"roles-{uuid.uuid4().hex[:6]}"  # the Ray head is the session's
    env = {
        **service_env(azurite, broker, data),
        **ray_head.env,
        "STATSAGA_RAY_NAMESPACE": namespace,
    }
    port = free_port()
    worker = Service("worker", env, data / "worker.log").start()
    api_env = {**env, "STATSAGA_PORT": str(port)}
    # Both at once, as `statsaga dev` starts them: the api is ready once the worker has
    # created the pools.
    api = Service("api", api_env, data / "api.log", f"http://127.0.0.1:{port}").start()
    client = StatsClient(api.base_url, KEYS)
    try:
        worker.wait_log(WORKER_UP, 120)
        api.wait_ready(120)
        yield Roles(api, worker, broker, client)
    finally:
        client.http.close()
        stop_all([api, worker])
        kill_pools_on(ray_head, [namespace])


def new_matches(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    population = [f"p-{run}-{i}" for i in range(30)]
    return [random_match(rng, f"m-{run}-{i}", population) for i in range(n)]


def post_all(client: StatsClient, matches: list[dict[str, Any]]) -> None:
    for match in matches:
        response = client.post_match(match)
        assert response.status_code == 202, response.text


def assert_each_counted_once(client: StatsClient, matches: list[dict[str, Any]]) -> None:
    ids = [m["match_id"] for m in matches]
    assert client.wait_finished(ids, timeout_s=180) == dict.fromkeys(ids, "completed")
    assert record_problems(client, matches) == {}
    for match_id in ids:
        kinds = [row["type"] for row in client.get_match(match_id).json()["log"]]
        assert kinds.count("SagaStarted") == 1 and kinds.count("SagaCompleted") == 1, kinds


def test_both_roles_run_on_uvloop(roles: Roles) -> None:
    # Installed with statsaga; each role names its loop in the line saying it is up.
    for role in (roles.api, roles.worker):
        (up,) = [line for line in role.output().splitlines() if "is up" in line]
        assert "uvloop loop)" in up, up


def test_killing_the_worker_while_matches_arrive_loses_and_doubles_nothing(roles: Roles) -> None:
    before, during = new_matches(12, seed=21), new_matches(12, seed=22)
    post_all(roles.client, before)
    roles.worker.kill()  # SIGKILL by PID, probably with sagas in flight
    post_all(roles.client, during)  # the API does not need the worker
    time.sleep(2)
    waiting = [roles.client.get_match(m["match_id"]).json()["state"] for m in during]
    assert waiting == ["accepted"] * len(during)  # queued, nobody consumes them

    roles.worker.start()
    roles.worker.wait_log(WORKER_UP, 120)
    assert_each_counted_once(roles.client, before + during)


def test_killing_the_broker_between_publish_and_consume_loses_nothing(roles: Roles) -> None:
    roles.worker.stop()  # nobody consumes: the messages sit in the broker
    queued = new_matches(10, seed=31)
    post_all(roles.client, queued)
    roles.broker.kill()  # SIGKILL: only what SQLite holds survives
    roles.broker.restart()
    after = new_matches(5, seed=32)
    post_all(roles.client, after)  # the API reconnects to the restarted broker

    roles.worker.start()
    roles.worker.wait_log(WORKER_UP, 120)
    assert_each_counted_once(roles.client, queued + after)


def test_an_api_that_cannot_reach_ray_still_accepts_matches(
    roles: Roles, tmp_path_factory: pytest.TempPathFactory
) -> None:
    port = free_port()
    env = {
        **roles.api.env,
        "STATSAGA_PORT": str(port),
        "RAY_ADDRESS": f"127.0.0.1:{free_port()}",  # nothing listens there
    }
    log = tmp_path_factory.mktemp("lonely-api") / "api.log"
    api = Service("api", env, log, f"http://127.0.0.1:{port}").start()
    client = StatsClient(api.base_url, KEYS)
    try:
        api.wait_ready(120)  # ready without Ray: POSTs need only storage and the bus
        (match,) = new_matches(1, seed=41)
        assert client.post_match(match).status_code == 202
        # The worker (which has Ray) runs the saga; this API reads its state from storage.
        assert client.wait_finished([match["match_id"]], timeout_s=60) == {
            match["match_id"]: "completed"
        }
        response = client.stats(match["players"][0]["player_id"])
        assert response.status_code == 503, response.text  # reads need the grains
    finally:
        client.http.close()
        api.stop()
