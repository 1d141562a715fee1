"""The ``MessageBus`` contract. Every adapter's test is a three-line subclass."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from app.application.ports import BusMessage, MessageBus
from app.domain.errors import MessageRefused
from sbemu.launcher import LocalBroker
from storage.memory_bus import InMemoryMessageBus
from storage.servicebus_bus import ServiceBusMessageBus
from tests.support.azure import SERVICEBUS_ENV, azure_queues, connection_string


def msg(body: int, mid: str | None = None) -> BusMessage:
    return BusMessage(mid or uuid.uuid4().hex, {"n": body})


class MessageBusContract:
    """Behaviour every ``MessageBus`` adapter must have."""

    max_delivery_count = 3

    @pytest.fixture
    async def bus(self) -> AsyncIterator[MessageBus]:
        raise NotImplementedError

    @pytest.fixture
    def queue(self) -> str:
        return f"q{uuid.uuid4().hex[:8]}"

    async def test_publish_then_receive_and_complete(self, bus: MessageBus, queue: str) -> None:
        await bus.publish(queue, msg(1))
        got = await bus.receive(queue, 10, 2.0)
        assert [r.message.body["n"] for r in got] == [1]
        assert got[0].delivery_count == 0
        await bus.complete(got[0])
        assert await bus.receive(queue, 10, 0.2) == []

    async def test_receive_waits_at_most_max_wait(self, bus: MessageBus, queue: str) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert await bus.receive(queue, 1, 0.3) == []
        assert loop.time() - start < 2.0

    async def test_duplicate_message_id_is_dropped(self, bus: MessageBus, queue: str) -> None:
        await bus.publish(queue, msg(1, "same"))
        await bus.publish(queue, msg(2, "same"))
        got = await bus.receive(queue, 10, 1.0)
        assert [r.message.body["n"] for r in got] == [1]
        assert await bus.receive(queue, 10, 0.3) == []

    async def test_abandon_redelivers_with_a_higher_count(
        self, bus: MessageBus, queue: str
    ) -> None:
        await bus.publish(queue, msg(1))
        first = (await bus.receive(queue, 1, 2.0))[0]
        await bus.abandon(first)
        second = (await bus.receive(queue, 1, 2.0))[0]
        assert second.message.message_id == first.message.message_id
        assert second.delivery_count == 1

    async def test_max_delivery_count_dead_letters(self, bus: MessageBus, queue: str) -> None:
        await bus.publish(queue, msg(1))
        for _ in range(self.max_delivery_count):
            got = await bus.receive(queue, 1, 2.0)
            await bus.abandon(got[0])
        assert await bus.receive(queue, 1, 0.3) == []
        dead = await bus.receive(f"{queue}/$deadletterqueue", 1, 2.0)
        assert dead[0].message.body["DeadLetterReason"] == "MaxDeliveryCountExceeded"

    async def test_dead_letter_keeps_reason(self, bus: MessageBus, queue: str) -> None:
        await bus.publish(queue, msg(7))
        got = (await bus.receive(queue, 1, 2.0))[0]
        await bus.dead_letter(got, "Broken", "it broke")
        dead = (await bus.receive(f"{queue}/$deadletterqueue", 1, 2.0))[0]
        assert dead.message.body["n"] == 7
        assert dead.message.body["DeadLetterReason"] == "Broken"
        assert dead.message.body["DeadLetterErrorDescription"] == "it broke"

    async def test_peek_shows_dead_letters_without_taking_them(
        self, bus: MessageBus, queue: str
    ) -> None:
        for n in (1, 2):
            await bus.publish(queue, msg(n))
            got = (await bus.receive(queue, 1, 2.0))[0]
            await bus.dead_letter(got, "Broken", f"number {n}")
        dlq = f"{queue}/$deadletterqueue"
        for _ in range(2):  # peeking twice sees the same: it takes nothing
            seen = await bus.peek(dlq, 10)
            assert [(m.body["n"], m.body["DeadLetterErrorDescription"]) for m in seen] == [
                (1, "number 1"),
                (2, "number 2"),
            ]
        assert len(await bus.peek(dlq, 1)) == 1
        assert len(await bus.receive(dlq, 10, 2.0)) >= 1

    async def test_scheduled_message_appears_after_its_delay(
        self, bus: MessageBus, queue: str
    ) -> None:
        await bus.receive(queue, 1, 0.1)  # links open: the timing below is the bus's own
        await bus.schedule(queue, msg(1), 2.0)
        assert await bus.receive(queue, 1, 0.5) == []
        got = await bus.receive(queue, 1, 6.0)
        assert [r.message.body["n"] for r in got] == [1]

    async def test_receive_returns_at_most_max_messages(self, bus: MessageBus, queue: str) -> None:
        for i in range(5):
            await bus.publish(queue, msg(i))
        first = await bus.receive(queue, 3, 2.0)
        assert 1 <= len(first) <= 3
        for r in first:
            await bus.complete(r)

    async def test_a_message_id_of_128_characters_is_sent_and_129_refused(
        self, bus: MessageBus, queue: str
    ) -> None:
        longest = uuid.uuid4().hex + "x" * 96
        with pytest.raises(MessageRefused, match="128"):
            await bus.publish(queue, msg(1, longest + "y"))
        with pytest.raises(MessageRefused, match="128"):
            await bus.schedule(queue, msg(2, longest + "y"), 0.0)
        await bus.publish(queue, msg(3, longest))
        got = await bus.receive(queue, 10, 2.0)
        assert [(r.message.message_id, r.message.body["n"]) for r in got] == [(longest, 3)]

    async def test_a_message_over_256_kib_is_refused(self, bus: MessageBus, queue: str) -> None:
        big = BusMessage(uuid.uuid4().hex, {"n": 1, "pad": "x" * (260 * 1024)})
        with pytest.raises(MessageRefused):
            await bus.publish(queue, big)
        with pytest.raises(MessageRefused):
            await bus.schedule(queue, big, 0.0)
        # Well under the limit (headers count too, differently per adapter): sent whole.
        fits = BusMessage(uuid.uuid4().hex, {"n": 2, "pad": "x" * (200 * 1024)})
        await bus.publish(queue, fits)
        got = await bus.receive(queue, 10, 2.0)
        assert [(r.message.body["n"], len(r.message.body["pad"])) for r in got] == [(2, 200 * 1024)]


class TestInMemoryMessageBus(MessageBusContract):
    @pytest.fixture
    async def bus(self) -> AsyncIterator[MessageBus]:
        yield InMemoryMessageBus(max_delivery_count=self.max_delivery_count)


async def test_in_memory_lock_expiry_redelivers() -> None:
    bus = InMemoryMessageBus(lock_duration_s=0.2)
    await bus.publish("q", msg(1))
    first = (await bus.receive("q", 1, 1.0))[0]
    again = await bus.receive("q", 1, 2.0)
    assert again and again[0].delivery_count == 1
    with pytest.raises(RuntimeError, match="lock"):
        await bus.complete(first)


_SPARE = iter(range(24))


@pytest.mark.broker
class TestServiceBusMessageBus(MessageBusContract):
    """The adapter through the real SDK on the local broker; each test gets a fresh queue
    of the broker's spare ones (Service Bus queues are declared, not created on use)."""

    @pytest.fixture
    def queue(self) -> str:
        return f"c{next(_SPARE):02d}"

    @pytest.fixture
    async def bus(self, broker: LocalBroker) -> AsyncIterator[MessageBus]:
        bus = ServiceBusMessageBus(broker.connection_string)
        yield bus
        await bus.close()


@pytest.mark.azure
class TestServiceBusMessageBusOnAzure(MessageBusContract):
    """The same contract on a real Service Bus namespace (see ``tests.support.azure``):
    each test gets a queue of its own, made for it and deleted after it."""

    @pytest.fixture
    async def queue(self) -> AsyncIterator[str]:
        conn = connection_string(SERVICEBUS_ENV)
        async with azure_queues(conn, 1, max_delivery_count=self.max_delivery_count) as names:
            yield names[0]

    @pytest.fixture
    async def bus(self) -> AsyncIterator[MessageBus]:
        bus = ServiceBusMessageBus(connection_string(SERVICEBUS_ENV))
        yield bus
        await bus.close()
