"""What the Service Bus adapter adds to the contract: lock renewal, body handling, and
surviving a broker restart. Real SDK, real local broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from azure.servicebus import ServiceBusMessage
from azure.servicebus.aio import ServiceBusClient

from app.application.ports import BusMessage
from app.domain.errors import BusUnavailable
from sbemu.launcher import LocalBroker
from storage.servicebus_bus import UNREADABLE, ServiceBusMessageBus
from tests.conftest import BrokerFactory
from tests.support.servicebus import queue

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


async def test_a_held_message_keeps_its_lock_past_the_lock_duration(
    broker_factory: BrokerFactory,
) -> None:
    instance = broker_factory([queue("slow", lock_s=2)], name="renew")
    bus = ServiceBusMessageBus(instance.connection_string)
    other = ServiceBusMessageBus(instance.connection_string)
    try:
        await bus.publish("slow", BusMessage("m1", {"n": 1}))
        held = await bus.receive("slow", 1, 5.0)
        assert len(held) == 1
        await asyncio.sleep(5)  # 2.5 lock durations: renewed, so nobody else gets it
        assert await other.receive("slow", 1, 1.0) == []
        await bus.complete(held[0])
    finally:
        await bus.close()
        await other.close()


async def test_many_held_messages_keep_their_locks_and_settle(
    broker_factory: BrokerFactory,
) -> None:
    # Thirty messages renewed over the same receiver at the same moments: renewals must not
    # break the link (concurrent management requests once did), and every one settles.
    instance = broker_factory([queue("busy", lock_s=2)], name="renew-many")
    bus = ServiceBusMessageBus(instance.connection_string)
    other = ServiceBusMessageBus(instance.connection_string)
    try:
        for n in range(30):
            await bus.publish("busy", BusMessage(f"m{n}", {"n": n}))
        held = []
        while len(held) < 30:
            held += await bus.receive("busy", 30 - len(held), 5.0)
        await asyncio.sleep(7)  # 3.5 lock durations: several renewals of each
        assert await other.receive("busy", 1, 1.0) == []
        await asyncio.gather(*(bus.complete(r) for r in held))
        assert await other.receive("busy", 10, 3.0) == []  # none came back
    finally:
        await bus.close()
        await other.close()


async def test_a_body_that_is_not_a_json_object_is_handed_over_marked_unreadable(
    broker: LocalBroker,
) -> None:
    client = ServiceBusClient.from_connection_string(broker.connection_string)
    async with client, client.get_queue_sender("c23") as sender:
        await sender.send_messages(ServiceBusMessage(b"\xff not json", message_id="x"))
    bus = ServiceBusMessageBus(broker.connection_string)
    try:
        got = await bus.receive("c23", 1, 5.0)
        assert [r.message.message_id for r in got] == ["x"]
        assert set(got[0].message.body) == {UNREADABLE}
        await bus.complete(got[0])
    finally:
        await bus.close()


async def test_a_send_to_a_broker_that_is_gone_is_the_ports_transient_error(
    broker_factory: BrokerFactory,
) -> None:
    # Ingest retries BusUnavailable in process; a raw SDK error would fail the POST at once.
    instance = broker_factory([queue("q")], name="gone")
    bus = ServiceBusMessageBus(instance.connection_string)
    try:
        await bus.publish("q", BusMessage("before", {"id": "before"}))
        instance.kill()
        with pytest.raises(BusUnavailable):
            await bus.publish("q", BusMessage("after", {"id": "after"}))
        with pytest.raises(BusUnavailable):
            await bus.schedule("q", BusMessage("later", {"id": "later"}), 5.0)
    finally:
        await bus.close()


async def test_publish_and_receive_go_on_after_the_broker_restarts(
    broker_factory: BrokerFactory,
) -> None:
    instance = broker_factory([queue("q", lock_s=5)], name="restart")
    bus = ServiceBusMessageBus(instance.connection_string)
    try:
        ids = [uuid.uuid4().hex for _ in range(5)]
        for mid in ids:
            await bus.publish("q", BusMessage(mid, {"id": mid}))
        instance.kill()  # SIGKILL: what was acknowledged must survive
        restarted = instance.restart()
        got: list[str] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(got) < len(ids) and loop.time() < deadline:
            try:
                batch = await bus.receive("q", 10, 2.0)
            except Exception:  # the first calls after a restart may see the old link fail
                await asyncio.sleep(0.5)
                continue
            for r in batch:
                got.append(r.message.message_id)
                await bus.complete(r)
        assert sorted(got) == sorted(ids)
        await bus.publish("q", BusMessage("after", {"id": "after"}))
        again = await bus.receive("q", 1, 5.0)
        assert [r.message.message_id for r in again] == ["after"]
        await bus.complete(again[0])
        restarted.stop()
    finally:
        await bus.close()
