"""The operator's CLI (`statsaga sagas|redrive|invalidate|deadletters|replay|queues`)
against real Azurite and a real local broker, as an operator would run it."""

from __future__ import annotations

import asyncio
import json
import random
import uuid

import pytest

from app.application.messages import MATCHES_QUEUE
from app.application.ports import BusMessage
from app.application.sagas import utc_now
from app.domain.aggregation import aggregate
from app.domain.validation import parse_match
from app.entrypoints.cli import main
from devstack.processes import Azurite
from storage.servicebus_bus import ServiceBusMessageBus
from storage.tables import open_table_storage
from tests.conftest import BrokerFactory
from tests.support.matches import random_match
from tests.support.servicebus import project_queues

pytestmark = [pytest.mark.azurite, pytest.mark.broker, pytest.mark.timeout(120)]


def test_the_operator_cli(
    azurite: Azurite,
    broker_factory: BrokerFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    broker = broker_factory(project_queues(lock_s=5), name="cli-broker")
    prefix = f"cli{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("STATSAGA_STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("STATSAGA_SERVICEBUS_CONNECTION_STRING", broker.connection_string)
    monkeypatch.setenv(
        "STATSAGA_SERVICEBUS_ADMIN_CONNECTION_STRING", broker.admin_connection_string
    )
    monkeypatch.setenv("STATSAGA_STORAGE_PREFIX", prefix)
    match = parse_match(
        random_match(random.Random(3), f"m-{prefix}", ["p-a", "p-b"], size=2), now=None
    )

    async def setup() -> None:
        storage = await open_table_storage(azurite.connection_string, prefix)
        await storage.sagas.create(match, utc_now(), aggregate(match))  # stored, not published
        await storage.close()
        bus = ServiceBusMessageBus(broker.connection_string)
        await bus.publish(MATCHES_QUEUE, BusMessage("poison", {"match_id": "nope"}))
        (received,) = await bus.receive(MATCHES_QUEUE, 1, 5.0)
        await bus.dead_letter(received, "UnprocessableMessage", "NotFound: nope")
        await bus.close()

    asyncio.run(setup())

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run("sagas", "--state", "accepted", "--json")
    assert code == 0 and [s["match_id"] for s in json.loads(out)] == [match.match_id]
    code, out, _ = run("sagas")
    assert code == 0 and match.match_id in out and "MATCH_ID" in out  # a table by default

    code, _, err = run("redrive", match.match_id)
    assert code == 1 and "not started yet" in err
    code, _, err = run("redrive", "no-such-match")
    assert code == 1 and "not found" in err

    def depths() -> dict[str, tuple[int, int, int]]:
        code, out, _ = run("queues", "--json")
        assert code == 0
        return {
            r["queue"]: (r["active"], r["scheduled"], r["dead_letter"]) for r in json.loads(out)
        }

    assert depths() == {"matches": (0, 0, 1), "player-updates": (0, 0, 0)}
    code, out, _ = run("queues")
    assert code == 0 and "DEAD_LETTER" in out and "player-updates" in out  # a table

    code, out, _ = run("deadletters", "--json")
    letters = json.loads(out)
    assert code == 0 and [(d["message_id"], d["reason"]) for d in letters] == [
        ("poison", "UnprocessableMessage")
    ]
    code, out, _ = run("replay", "--queue", "matches", "--id", "poison")
    assert code == 0 and [r["message_id"] for r in json.loads(out)["replayed"]] == ["poison"]
    code, out, _ = run("deadletters", "--json")
    assert json.loads(out) == []

    code, out, _ = run("invalidate", match.match_id, "--reason", "test")
    assert code == 0 and json.loads(out)["requested"] == "match.invalidated"

    async def queued() -> list[str]:
        bus = ServiceBusMessageBus(broker.connection_string)
        try:
            return [m.subject for m in await bus.peek(MATCHES_QUEUE, 10)]
        finally:
            await bus.close()

    # The replayed message and the invalidation wait for a worker.
    assert sorted(asyncio.run(queued())) == ["", "match.invalidated"]
    assert depths() == {"matches": (2, 0, 0), "player-updates": (0, 0, 0)}

    # Pointed at the AMQP port instead of the administration one: a clear error, not a hang.
    monkeypatch.setenv("STATSAGA_SERVICEBUS_ADMIN_CONNECTION_STRING", broker.connection_string)
    code, _, err = run("queues")
    assert code == 1 and "STATSAGA_SERVICEBUS_ADMIN_CONNECTION_STRING" in err
