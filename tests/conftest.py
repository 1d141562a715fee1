"""Shared fixtures: one real Azurite and one Ray head for the whole session, local Service
Bus brokers for the session or for one module, unique names per test."""

from __future__ import annotations

import shutil
import signal
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from app.runtime.lifeline import die_with_parent
from devstack.processes import Azurite, start_azurite
from devstack.ray_cluster import RayHead, start_ray_head
from sbemu.launcher import LocalBroker, start_broker
from tests.support.servicebus import project_queues, queue, write_config

if TYPE_CHECKING:
    from tests.e2e.conftest import Scenario

BrokerFactory = Callable[..., LocalBroker]


def pytest_configure(config: pytest.Config) -> None:
    """A SIGTERM (a CI time limit, ``timeout``) ends the run as Ctrl-C does: the fixtures'
    teardown stops what they started and removes their temp dirs. Whatever that misses,
    or a SIGKILL, is left to the kernel: every child is started with ``die_with_parent``."""

    def stop(signum: int, frame: object) -> None:
        signal.signal(signum, signal.SIG_DFL)  # a second SIGTERM ends the run at once
        pytest.exit(f"stopped by signal {signum}", returncode=128 + signum)

    signal.signal(signal.SIGTERM, stop)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """A real Azurite (Blob + Table) on free ports, data in a temp dir, stopped by PID."""
    location: Path = tmp_path_factory.mktemp("azurite")
    instance = start_azurite(location, log=location / "azurite.log")
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def unique() -> str:
    """A short unique suffix for ids and table names, so tests never share state."""
    return uuid.uuid4().hex[:10]


@dataclass
class _Brokers:
    """Brokers started by ``broker_factory``: for the session, or for one module."""

    session: list[LocalBroker] = field(default_factory=list)
    module: list[LocalBroker] = field(default_factory=list)


@pytest.fixture(scope="session")
def _brokers() -> Iterator[_Brokers]:
    started = _Brokers()
    yield started
    for instance in started.session + started.module:
        instance.stop()


@pytest.fixture(scope="module", autouse=True)
def _stop_module_brokers(_brokers: _Brokers) -> Iterator[None]:
    """A module's brokers stop with it: an idle broker still takes ~2% of a core, and
    they used to add up, each kept until the end of the session."""
    yield
    while _brokers.module:
        _brokers.module.pop().stop()


@pytest.fixture(scope="session")
def broker_factory(tmp_path_factory: pytest.TempPathFactory, _brokers: _Brokers) -> BrokerFactory:
    """Starts local Service Bus brokers (sbemu) with the queues asked for, on free ports
    (AMQP, and the administration API for ``admin_connection_string``), data in temp
    dirs; each is stopped by PID at the end of the module that started it, or with
    ``session=True`` (for session fixtures), at the end of the session."""

    def start(
        queues: list[dict[str, Any]], name: str = "broker", *, session: bool = False
    ) -> LocalBroker:
        location = tmp_path_factory.mktemp(name)
        config = write_config(location / "Config.json", queues)
        instance = start_broker(
            location / "data", config, log=location / "broker.log", preexec_fn=die_with_parent()
        )
        (_brokers.session if session else _brokers.module).append(instance)
        return instance

    return start


@pytest.fixture(scope="session")
def broker(broker_factory: BrokerFactory) -> LocalBroker:
    """One broker with the project's queues (lock 5 s, so lost locks come back quickly)
    and 24 spare queues ``c00``…``c23`` (max delivery count 3) for contract tests."""
    spare = [queue(f"c{i:02d}", lock_s=5, max_delivery=3) for i in range(24)]
    return broker_factory(project_queues(lock_s=5) + spare, session=True)


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayHead]:
    """A Ray head that separate api and worker processes join, one for the session (it
    takes seconds to start): each user keeps to a Ray namespace of its own and stops its
    pools when done (``tests.support.raypools``)."""
    # Ray's socket paths must stay short (108 bytes): a short temp dir of its own.
    temp = Path(tempfile.mkdtemp(prefix="sgray-"))
    head = start_ray_head(temp, num_cpus=2, log=tmp_path_factory.mktemp("ray") / "head.log")
    try:
        yield head
    finally:
        head.stop()
        shutil.rmtree(temp, ignore_errors=True)


# The last test to use clean_scenario, found at collection: once it is done the scenario
# stops, rather than idle to the end of the session (~20% of a core, measured).
_clean_scenario_end: dict[str, Any] = {}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    users = [i for i in items if "clean_scenario" in getattr(i, "fixturenames", ())]
    _clean_scenario_end["last"] = users[-1].nodeid if users else None


def pytest_runtest_teardown(item: pytest.Item) -> None:
    if item.nodeid == _clean_scenario_end.get("last") and "stop" in _clean_scenario_end:
        _clean_scenario_end.pop("stop")()


@pytest.fixture(scope="session")
def clean_scenario(
    azurite: Azurite,
    broker_factory: BrokerFactory,
    ray_head: RayHead,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Scenario]:
    """An api + worker without faults, on default pool sizes (2 and 2), for every module
    that needs no settings of its own (chaos's targeted failures, the resizes): starting
    one takes 10-15 s. Its users touch only matches and players of their own, and assume
    nothing of the pool sizes they find. Stopped after the last test that uses it."""
    # Here, not in tests/e2e/conftest.py: a session fixture there would be a second one
    # in tests/chaos, which imports it.
    from tests.e2e.conftest import launch_scenario, stop_scenarios

    started: list[Scenario] = []

    def stop() -> None:
        stop_scenarios(started, ray_head)
        for scenario in started:
            scenario.broker.stop()

    _clean_scenario_end["stop"] = stop
    try:
        yield launch_scenario(
            "clean", "", azurite, broker_factory, ray_head, tmp_path_factory, started, session=True
        )
    finally:
        if _clean_scenario_end.pop("stop", None) is not None:
            stop_scenarios(started, None)  # the head stops next, and the pools with it
