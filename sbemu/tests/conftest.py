"""One broker for the session, with queues for each behaviour under test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.runtime.lifeline import die_with_parent
from sbemu.config import queue_declaration, write_config
from sbemu.launcher import LocalBroker, start_broker


def queue(name: str, **props: Any) -> dict[str, Any]:
    return queue_declaration(
        name, lock_s=30, dedup=False, **{"DefaultMessageTimeToLive": "P1D", **props}
    )


QUEUES = [
    queue("plain"),
    queue("batch"),
    queue("settle"),
    queue("dlq"),
    queue("short", LockDuration="PT2S", MaxDeliveryCount=3),
    queue("renew", LockDuration="PT2S"),
    queue("dedup", RequiresDuplicateDetection=True),
    queue("sched"),
    queue("peek"),
    queue("compete"),
    queue("asyncq"),
    queue("big"),
    queue("defer"),
    queue("ttl", DefaultMessageTimeToLive="PT1S", DeadLetteringOnMessageExpiration=True),
    queue("durable", LockDuration="PT5S"),
    queue("rad"),
    queue("counts"),
    queue("counts-async"),
]


@pytest.fixture(scope="session")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A broker on a free port; stopped by PID at the end."""
    where = tmp_path_factory.mktemp("sbemu")
    config = write_config(where / "Config.json", QUEUES)
    # Gone with the test run, however it ends (statsaga's own fixtures do the same).
    broker = start_broker(
        where / "data", config, log=where / "broker.log", preexec_fn=die_with_parent()
    )
    yield broker
    broker.stop()
