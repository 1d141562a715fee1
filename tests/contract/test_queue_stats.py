"""The ``QueueStats`` contract: depths as Service Bus counts them, read next to the bus
that moves the messages. Every adapter's test is a small subclass."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from app.application.ports import BusMessage, MessageBus, QueueDepth, QueueStats, ReceivedMessage
from app.domain.errors import NotFound, TransientError
from sbemu.launcher import LocalBroker
from storage.memory_bus import InMemoryMessageBus, InMemoryQueueStats
from storage.servicebus_bus import ServiceBusMessageBus
from storage.servicebus_stats import ServiceBusQueueStats, uses_emulator
from tests.conftest import BrokerFactory
from tests.support.azure import SERVICEBUS_ENV, azure_queues, connection_string
from tests.support.servicebus import queue as declare

LATER_S = 3600.0  # scheduled far enough ahead to stay scheduled through the test


def msg(n: int) -> BusMessage:
    return BusMessage(uuid.uuid4().hex, {"n": n})


async def receive_exactly(bus: MessageBus, queue: str, count: int) -> list[ReceivedMessage]:
    """``count`` messages, however the bus splits them across receives."""
    got: list[ReceivedMessage] = []
    for _ in range(20):
        got += await bus.receive(queue, count - len(got), 2.0)
        if len(got) == count:
            return got
    raise AssertionError(f"received {len(got)} of {count} messages from {queue}")


class QueueStatsContract:
    """Behaviour every ``QueueStats`` adapter must have. ``queue`` and ``other`` are
    declared, empty queues; ``bus`` moves messages on them."""

    @pytest.fixture
    def names(self) -> tuple[str, str]:
        raise NotImplementedError

    @pytest.fixture
    async def bus(self) -> AsyncIterator[MessageBus]:
        raise NotImplementedError

    @pytest.fixture
    async def stats(self) -> AsyncIterator[QueueStats]:
        raise NotImplementedError

    async def test_an_empty_queue_has_nothing(
        self, stats: QueueStats, names: tuple[str, str]
    ) -> None:
        queue, _ = names
        assert await stats.depths([queue]) == {queue: QueueDepth(0, 0, 0)}

    async def test_active_scheduled_and_dead_lettered_are_counted_apart(
        self, bus: MessageBus, stats: QueueStats, names: tuple[str, str]
    ) -> None:
        queue, other = names
        waiting, scheduled, dead, done = 3, 2, 2, 1
        for n in range(waiting + dead + done):
            await bus.publish(queue, msg(n))
        for n in range(scheduled):
            await bus.schedule(queue, msg(100 + n), LATER_S)
        await bus.publish(other, msg(0))
        received = await receive_exactly(bus, queue, dead + done)
        for r in received[:dead]:
            await bus.dead_letter(r, "Broken", "for the count")
        for r in received[dead:]:
            await bus.complete(r)
        assert await stats.depths([queue, other]) == {
            queue: QueueDepth(active=waiting, scheduled=scheduled, dead_letter=dead),
            other: QueueDepth(active=1),
        }

    async def test_a_locked_message_is_still_active_until_settled(
        self, bus: MessageBus, stats: QueueStats, names: tuple[str, str]
    ) -> None:
        queue, _ = names
        await bus.publish(queue, msg(1))
        (held,) = await receive_exactly(bus, queue, 1)
        assert (await stats.depths([queue]))[queue] == QueueDepth(active=1)
        await bus.complete(held)
        assert (await stats.depths([queue]))[queue] == QueueDepth()

    async def test_an_unknown_queue_is_not_found(
        self, stats: QueueStats, names: tuple[str, str]
    ) -> None:
        queue, _ = names
        with pytest.raises(NotFound):
            await stats.depths([queue, f"nosuch{uuid.uuid4().hex[:6]}"])


class TestInMemoryQueueStats(QueueStatsContract):
    @pytest.fixture
    def names(self) -> tuple[str, str]:
        return "q1", "q2"

    @pytest.fixture
    async def bus(self) -> AsyncIterator[MessageBus]:
        yield InMemoryMessageBus()

    @pytest.fixture
    async def stats(self, bus: InMemoryMessageBus) -> AsyncIterator[QueueStats]:
        yield InMemoryQueueStats(bus, ["q1", "q2"])


_STATS_QUEUES = [f"s{i:02d}" for i in range(10)]


@pytest.fixture(scope="module")
def stats_broker(broker_factory: BrokerFactory) -> LocalBroker:
    """A broker of this module's own: the counts must see no other test's messages."""
    return broker_factory([declare(n, lock_s=30) for n in _STATS_QUEUES], name="stats-broker")


@pytest.mark.broker
class TestServiceBusQueueStats(QueueStatsContract):
    """The adapter through the SDK's administration client, on the local broker's
    administration API, next to the bus adapter on its AMQP port."""

    _fresh: Iterator[str] = iter(_STATS_QUEUES)

    @pytest.fixture
    def names(self) -> tuple[str, str]:
        return next(self._fresh), next(self._fresh)

    @pytest.fixture
    async def bus(self, stats_broker: LocalBroker) -> AsyncIterator[MessageBus]:
        bus = ServiceBusMessageBus(stats_broker.connection_string)
        yield bus
        await bus.close()

    @pytest.fixture
    async def stats(self, stats_broker: LocalBroker) -> AsyncIterator[QueueStats]:
        stats = ServiceBusQueueStats(stats_broker.admin_connection_string)
        yield stats
        await stats.close()


@pytest.mark.azure
class TestServiceBusQueueStatsOnAzure(QueueStatsContract):
    """The same contract on a real Service Bus namespace (see ``tests.support.azure``),
    on two queues made for each test and deleted after it."""

    @pytest.fixture
    async def names(self) -> AsyncIterator[tuple[str, str]]:
        async with azure_queues(connection_string(SERVICEBUS_ENV), 2, lock_s=30) as names:
            yield names[0], names[1]

    @pytest.fixture
    async def bus(self) -> AsyncIterator[MessageBus]:
        bus = ServiceBusMessageBus(connection_string(SERVICEBUS_ENV))
        yield bus
        await bus.close()

    @pytest.fixture
    async def stats(self) -> AsyncIterator[QueueStats]:
        stats = ServiceBusQueueStats(connection_string(SERVICEBUS_ENV))
        yield stats
        await stats.close()


@pytest.mark.broker
@pytest.mark.timeout(60)
async def test_a_stopped_broker_is_a_transient_error(broker_factory: BrokerFactory) -> None:
    broker = broker_factory([declare("gone")], name="stopped-broker")
    stats = ServiceBusQueueStats(broker.admin_connection_string, timeout_s=3.0)
    try:
        assert await stats.depths(["gone"]) == {"gone": QueueDepth()}
        broker.stop()
        with pytest.raises(TransientError, match="unreachable"):
            await stats.depths(["gone"])
    finally:
        await stats.close()


@pytest.mark.timeout(60)
async def test_an_api_that_never_answers_is_a_transient_error_within_the_timeout() -> None:
    # Accepts connections (the kernel does, from the backlog) and never answers a byte.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        stats = ServiceBusQueueStats(
            f"Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=k;SharedAccessKey=v;"
            "UseDevelopmentEmulator=true",
            timeout_s=1.0,
        )
        try:
            with pytest.raises(TransientError, match="in time"):
                await asyncio.wait_for(stats.depths(["matches"]), 30)
        finally:
            await stats.close()


@pytest.mark.broker
async def test_the_amqp_port_instead_of_the_admin_port_names_the_setting(
    stats_broker: LocalBroker,
) -> None:
    stats = ServiceBusQueueStats(stats_broker.connection_string, timeout_s=3.0)
    try:
        with pytest.raises(
            TransientError, match="STATSAGA_SERVICEBUS_ADMIN_CONNECTION_STRING"
        ) as info:
            await stats.depths([_STATS_QUEUES[0]])
        # The broker's refusal quotes the request back, signed Authorization header and all:
        # none of it reaches the message.
        assert "sig=" not in str(info.value) and "SharedAccess" not in str(info.value)
    finally:
        await stats.close()


def test_only_emulator_connection_strings_are_sent_over_plain_http() -> None:
    azure = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=v"
    assert not uses_emulator(azure)
    assert uses_emulator(
        "Endpoint=sb://127.0.0.1:5300;SharedAccessKeyName=k;"
        "SharedAccessKey=v;UseDevelopmentEmulator=true;"
    )
    # The SDK takes only the exact value "true" as the emulator.
    assert not uses_emulator(azure + ";UseDevelopmentEmulator=True")
