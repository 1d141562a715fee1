"""The local broker through the public azure-servicebus API only (sync and async): these
tests are also the check that a newer SDK still works with it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from azure.servicebus import (
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)
from azure.servicebus.aio import ServiceBusClient as AsyncClient
from azure.servicebus.exceptions import (
    MessageLockLostError,
    MessageSizeExceededError,
    ServiceBusError,
)

from sbemu.depths import queue_depths
from sbemu.launcher import LocalBroker

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def client(sb: LocalBroker) -> ServiceBusClient:
    return ServiceBusClient.from_connection_string(sb.connection_string)


def send(sb: LocalBroker, queue: str, *messages: ServiceBusMessage) -> None:
    with client(sb) as c, c.get_queue_sender(queue) as sender:
        for m in messages:
            sender.send_messages(m)


def receive_all(sb: LocalBroker, queue: str, n: int, wait: float = 3.0, **kw: object) -> list:
    """Receive (and complete) up to ``n`` messages."""
    got: list = []
    with client(sb) as c, c.get_queue_receiver(queue, **kw) as r:
        deadline = time.monotonic() + wait * 3
        while len(got) < n and time.monotonic() < deadline:
            batch = r.receive_messages(n - len(got), max_wait_time=wait)
            for m in batch:
                got.append(
                    (str(m), m.message_id, m.delivery_count, dict(m.application_properties or {}))
                )
                r.complete_message(m)
    return got


def test_send_receive_complete_keeps_what_the_sender_set(sb: LocalBroker) -> None:
    send(
        sb,
        "plain",
        ServiceBusMessage(
            b'{"n":1}',
            message_id="m-1",
            subject="match.completed",
            content_type="application/json",
            correlation_id="c-1",
            application_properties={"k": "v", "i": 7},
        ),
    )
    with client(sb) as c, c.get_queue_receiver("plain") as r:
        (m,) = r.receive_messages(5, max_wait_time=3)
        assert str(m) == '{"n":1}'
        assert (m.message_id, m.subject, m.content_type, m.correlation_id) == (
            "m-1",
            "match.completed",
            "application/json",
            "c-1",
        )
        # The SDK's AMQP stack hands strings back as bytes, as it does from Azure.
        assert m.application_properties == {b"k": b"v", b"i": 7}
        assert m.delivery_count == 0 and m.sequence_number >= 1
        assert m.enqueued_time_utc is not None and m.locked_until_utc > datetime.now(UTC)
        r.complete_message(m)
        assert r.receive_messages(1, max_wait_time=1) == []


def test_batch_send_delivers_every_message_in_order(sb: LocalBroker) -> None:
    with client(sb) as c, c.get_queue_sender("batch") as sender:
        batch = sender.create_message_batch()
        for i in range(50):
            batch.add_message(ServiceBusMessage(f"b{i}", message_id=f"b{i}"))
        sender.send_messages(batch)
        sender.send_messages([ServiceBusMessage(f"l{i}") for i in range(3)])
    got = receive_all(sb, "batch", 53)
    assert [g[0] for g in got] == [f"b{i}" for i in range(50)] + ["l0", "l1", "l2"]


def test_abandon_redelivers_with_a_higher_delivery_count(sb: LocalBroker) -> None:
    send(sb, "settle", ServiceBusMessage("a", message_id="a"))
    with client(sb) as c, c.get_queue_receiver("settle") as r:
        (first,) = r.receive_messages(1, max_wait_time=3)
        r.abandon_message(first)
        (again,) = r.receive_messages(1, max_wait_time=3)
        assert again.message_id == "a" and again.delivery_count == 1
        r.complete_message(again)


def test_dead_letter_with_reason_lands_in_the_sub_queue(sb: LocalBroker) -> None:
    send(sb, "dlq", ServiceBusMessage("d", message_id="d"))
    with client(sb) as c:
        with c.get_queue_receiver("dlq") as r:
            (m,) = r.receive_messages(1, max_wait_time=3)
            r.dead_letter_message(m, reason="Broken", error_description="it broke")
            assert r.receive_messages(1, max_wait_time=1) == []
        with c.get_queue_receiver("dlq", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as d:
            (dead,) = d.receive_messages(1, max_wait_time=3)
            assert str(dead) == "d"
            assert dead.dead_letter_reason == "Broken"
            assert dead.dead_letter_error_description == "it broke"
            d.complete_message(dead)


def test_max_delivery_count_dead_letters_with_the_service_bus_reason(sb: LocalBroker) -> None:
    send(sb, "short", ServiceBusMessage("x", message_id="x"))
    with client(sb) as c:
        with c.get_queue_receiver("short") as r:
            for _ in range(3):
                (m,) = r.receive_messages(1, max_wait_time=3)
                r.abandon_message(m)
            assert r.receive_messages(1, max_wait_time=1) == []
        with c.get_queue_receiver("short", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as d:
            (dead,) = d.receive_messages(1, max_wait_time=3)
            assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"
            d.complete_message(dead)


def test_an_expired_lock_redelivers_and_the_late_settlement_fails(sb: LocalBroker) -> None:
    send(sb, "short", ServiceBusMessage("late", message_id="late"))
    with client(sb) as c, c.get_queue_receiver("short") as r:
        (first,) = r.receive_messages(1, max_wait_time=3)
        time.sleep(2.6)
        (again,) = r.receive_messages(1, max_wait_time=3)
        assert again.message_id == "late" and again.delivery_count == 1
        with pytest.raises(MessageLockLostError):
            r.complete_message(first)
        r.complete_message(again)


def test_renewing_a_lock_keeps_the_message(sb: LocalBroker) -> None:
    send(sb, "renew", ServiceBusMessage("r", message_id="r"))
    with client(sb) as c, c.get_queue_receiver("renew") as r:
        (m,) = r.receive_messages(1, max_wait_time=3)
        for _ in range(3):
            time.sleep(1.0)
            r.renew_message_lock(m)
        assert r.receive_messages(1, max_wait_time=1) == []
        r.complete_message(m)


def test_duplicate_message_ids_are_dropped_within_the_window(sb: LocalBroker) -> None:
    send(
        sb,
        "dedup",
        ServiceBusMessage("1", message_id="same"),
        ServiceBusMessage("2", message_id="same"),
        ServiceBusMessage("3", message_id="other"),
    )
    assert sorted(g[0] for g in receive_all(sb, "dedup", 3, wait=1.5)) == ["1", "3"]


def test_scheduled_messages_appear_at_their_time_and_can_be_cancelled(sb: LocalBroker) -> None:
    with client(sb) as c, c.get_queue_sender("sched") as sender, c.get_queue_receiver("sched") as r:
        soon = datetime.now(UTC) + timedelta(seconds=2)
        (keep,) = sender.schedule_messages(ServiceBusMessage("keep"), soon)
        (drop,) = sender.schedule_messages(ServiceBusMessage("drop"), soon)
        sender.cancel_scheduled_messages(drop)
        assert keep != drop
        assert queue_depths(sb.data_dir)["sched"].scheduled == 1
        (m,) = r.receive_messages(1, max_wait_time=10)
        assert datetime.now(UTC) >= soon - timedelta(seconds=0.2)  # not before its time
        assert str(m) == "keep" and m.sequence_number == keep
        r.complete_message(m)
        assert r.receive_messages(1, max_wait_time=2.5) == []  # the cancelled one never comes


def test_peek_shows_messages_without_locking_them(sb: LocalBroker) -> None:
    send(sb, "peek", *(ServiceBusMessage(f"p{i}") for i in range(3)))
    with client(sb) as c, c.get_queue_receiver("peek") as r:
        peeked = r.peek_messages(max_message_count=10)
        assert [str(m) for m in peeked] == ["p0", "p1", "p2"]
        later = r.peek_messages(max_message_count=10, sequence_number=peeked[1].sequence_number)
        assert [str(m) for m in later] == ["p1", "p2"]
    assert len(receive_all(sb, "peek", 3)) == 3


def test_competing_receivers_get_distinct_messages(sb: LocalBroker) -> None:
    send(sb, "compete", *(ServiceBusMessage(f"c{i}") for i in range(10)))
    with (
        client(sb) as c,
        c.get_queue_receiver("compete") as a,
        c.get_queue_receiver("compete") as b,
    ):
        first = a.receive_messages(5, max_wait_time=3)
        second = b.receive_messages(10, max_wait_time=3)
        ids = [str(m) for m in first] + [str(m) for m in second]
        assert sorted(ids) == sorted(f"c{i}" for i in range(10))
        for m in first:
            a.complete_message(m)
        for m in second:
            b.complete_message(m)


def test_defer_keeps_the_message_for_a_receive_by_sequence_number(sb: LocalBroker) -> None:
    send(sb, "defer", ServiceBusMessage("later", message_id="later"))
    with client(sb) as c, c.get_queue_receiver("defer") as r:
        (m,) = r.receive_messages(1, max_wait_time=3)
        r.defer_message(m)
        assert r.receive_messages(1, max_wait_time=1) == []
        (back,) = r.receive_deferred_messages([m.sequence_number])
        assert str(back) == "later"
        r.complete_message(back)


def test_receive_and_delete_removes_on_delivery(sb: LocalBroker) -> None:
    send(sb, "rad", ServiceBusMessage("gone"))
    with client(sb) as c:
        mode = ServiceBusReceiveMode.RECEIVE_AND_DELETE
        with c.get_queue_receiver("rad", receive_mode=mode) as r:
            assert [str(m) for m in r.receive_messages(1, max_wait_time=3)] == ["gone"]
        with c.get_queue_receiver("rad") as r:
            assert r.receive_messages(1, max_wait_time=1) == []


def test_expired_messages_are_dead_lettered_when_the_queue_says_so(sb: LocalBroker) -> None:
    send(sb, "ttl", ServiceBusMessage("old"))
    time.sleep(2.5)
    with client(sb) as c:
        with c.get_queue_receiver("ttl") as r:
            assert r.receive_messages(1, max_wait_time=0.5) == []
        with c.get_queue_receiver("ttl", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as d:
            (m,) = d.receive_messages(1, max_wait_time=3)
            assert m.dead_letter_reason == "TTLExpiredException"
            d.complete_message(m)


def test_an_unknown_queue_is_refused_and_the_broker_log_says_which(sb: LocalBroker) -> None:
    # The SDK reports a refused link as a generic error; the broker's log names the queue.
    c = ServiceBusClient.from_connection_string(sb.connection_string, retry_total=0)
    with c, pytest.raises(ServiceBusError), c.get_queue_sender("nope") as sender:
        sender.send_messages(ServiceBusMessage("x"))
    assert sb.log is not None
    assert "unknown queue 'nope'" in sb.log.read_text()
    assert "nope" not in queue_depths(sb.data_dir)


def test_a_message_over_256_kib_is_refused(sb: LocalBroker) -> None:
    c = client(sb)
    with c, c.get_queue_sender("big") as sender, pytest.raises(MessageSizeExceededError):
        sender.send_messages(ServiceBusMessage(b"x" * (300 * 1024)))


def test_a_scheduled_message_over_256_kib_is_refused(sb: LocalBroker) -> None:
    c = client(sb)
    at = datetime.now(UTC) + timedelta(seconds=1)
    with c, c.get_queue_sender("big") as sender:
        with pytest.raises(MessageSizeExceededError):
            sender.schedule_messages(ServiceBusMessage(b"x" * (300 * 1024)), at)
        assert len(sender.schedule_messages(ServiceBusMessage(b"x" * (200 * 1024)), at)) == 1


async def test_the_async_client_sends_receives_and_settles(sb: LocalBroker) -> None:
    async with AsyncClient.from_connection_string(sb.connection_string) as c:
        async with c.get_queue_sender("asyncq") as sender:
            await sender.send_messages([ServiceBusMessage(f"a{i}") for i in range(20)])
        got: list[str] = []
        async with c.get_queue_receiver("asyncq") as r:
            while len(got) < 20:
                batch = await r.receive_messages(20, max_wait_time=3)
                assert batch, "the async receiver stalled"
                # Settle concurrently, as a worker does.
                await asyncio.gather(*(r.complete_message(m) for m in batch))
                got += [str(m) for m in batch]
            assert await r.receive_messages(1, max_wait_time=1) == []
    assert sorted(got) == sorted(f"a{i}" for i in range(20))


@pytest.mark.timeout(90)
def test_a_killed_broker_loses_nothing_acknowledged_and_keeps_completions(
    sb: LocalBroker,
) -> None:
    send(sb, "durable", *(ServiceBusMessage(f"d{i}", message_id=f"d{i}") for i in range(20)))
    with client(sb) as c, c.get_queue_receiver("durable") as r:
        done = r.receive_messages(5, max_wait_time=3)
        for m in done:
            r.complete_message(m)
        held = r.receive_messages(3, max_wait_time=3)  # locked, never settled
        assert len(held) == 3
        sb.kill()  # SIGKILL while holding locks
    sb.restart()
    depths = queue_depths(sb.data_dir)
    assert depths["durable"].active + depths["durable"].locked == 15
    got = receive_all(sb, "durable", 15)
    completed = {m.message_id for m in done}
    assert len(got) == 15 and not completed & {g[1] for g in got}
    redelivered = {g[1]: g[2] for g in got if g[1] in {m.message_id for m in held}}
    assert len(redelivered) == 3 and all(count == 1 for count in redelivered.values())
    assert receive_all(sb, "durable", 1, wait=1) == []


def test_the_depths_command_prints_each_queue(sb: LocalBroker) -> None:
    send(sb, "plain", ServiceBusMessage("stay"))
    deadline = time.monotonic() + 5
    while queue_depths(sb.data_dir).get("plain") is None and time.monotonic() < deadline:
        time.sleep(0.1)
    out = subprocess.run(
        [sys.executable, "-m", "sbemu", "depths", "--data-dir", str(sb.data_dir), "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert json.loads(out)["plain"]["active"] == 1
    assert receive_all(sb, "plain", 1)[0][0] == "stay"
