"""The administration API through the SDK's ``ServiceBusAdministrationClient`` (sync and
async), next to messages moved over AMQP by the SDK's ``ServiceBusClient``.

azure-servicebus 7.15's administration client speaks HTTPS even for a connection string
with ``UseDevelopmentEmulator=true`` (it sets ``use_tls=False`` and never reads it), while
emulators serve the API over plain HTTP. So the client is given the SDK's own transport
with one change: requests go out over HTTP. Everything else is the SDK's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.pipeline.transport import AioHttpTransport, RequestsTransport
from azure.servicebus import ServiceBusClient, ServiceBusMessage
from azure.servicebus.aio import ServiceBusClient as AsyncClient
from azure.servicebus.aio.management import (
    ServiceBusAdministrationClient as AsyncAdminClient,
)
from azure.servicebus.management import ServiceBusAdministrationClient

from sbemu.config import write_config
from sbemu.launcher import LocalBroker, start_broker
from sbemu.tests.conftest import QUEUES, queue

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def _plain(request: Any) -> None:
    if request.url.startswith("https://"):
        request.url = "http://" + request.url.removeprefix("https://")


class PlainHttp(RequestsTransport):
    """The SDK's requests transport over HTTP (what ``UseDevelopmentEmulator`` means)."""

    def send(self, request: Any, **kwargs: Any) -> Any:
        _plain(request)
        return super().send(request, **kwargs)


class AsyncPlainHttp(AioHttpTransport):
    """The SDK's aiohttp transport over HTTP."""

    async def send(self, request: Any, **kwargs: Any) -> Any:
        _plain(request)
        return await super().send(request, **kwargs)


def admin(sb: LocalBroker) -> ServiceBusAdministrationClient:
    return ServiceBusAdministrationClient.from_connection_string(
        sb.admin_connection_string, transport=PlainHttp(), retry_total=0
    )


def test_runtime_properties_count_messages_as_service_bus_does(sb: LocalBroker) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    with ServiceBusClient.from_connection_string(sb.connection_string) as c:
        with c.get_queue_sender("counts") as sender:
            sender.send_messages([ServiceBusMessage(f"m{i}") for i in range(4)])
            sender.schedule_messages(ServiceBusMessage("later"), later)
        with c.get_queue_receiver("counts") as r:
            first, second, _held = r.receive_messages(3, max_wait_time=3)
            r.dead_letter_message(first, reason="Broken")
            r.defer_message(second)
            # ``_held`` stays locked: still active, as in Service Bus.
            with admin(sb) as a:
                props = a.get_queue_runtime_properties("counts")
    assert props.name == "counts"
    # Waiting (1), deferred (1) and locked (1) are active; the scheduled one is not.
    assert (props.active_message_count, props.scheduled_message_count) == (3, 1)
    assert props.dead_letter_message_count == 1
    assert (props.transfer_message_count, props.transfer_dead_letter_message_count) == (0, 0)
    assert props.total_message_count == 5
    assert props.size_in_bytes and props.size_in_bytes > 0
    assert props.created_at_utc and props.accessed_at_utc
    assert props.created_at_utc <= props.accessed_at_utc <= datetime.now(UTC)


def test_get_queue_describes_the_declared_properties(sb: LocalBroker) -> None:
    with admin(sb) as a:
        q = a.get_queue("SHORT")  # entity names are case-insensitive
    assert q.name == "SHORT"
    assert q.lock_duration == timedelta(seconds=2)
    assert q.max_delivery_count == 3
    assert q.default_message_time_to_live == timedelta(days=1)
    assert q.requires_duplicate_detection is False and q.requires_session is False
    assert q.status == "Active"


def test_listing_pages_through_every_declared_queue(sb: LocalBroker) -> None:
    declared = sorted(q["Name"] for q in QUEUES)
    with admin(sb) as a:
        # Pages of 4: the SDK follows the feed's ``next`` links.
        assert [q.name for q in a.list_queues(max_page_size=4)] == declared
        runtime = list(a.list_queues_runtime_properties(max_page_size=5))
    assert [q.name for q in runtime] == declared
    assert all(q.active_message_count is not None for q in runtime)


def test_an_unknown_queue_raises_resource_not_found(sb: LocalBroker) -> None:
    with admin(sb) as a, pytest.raises(ResourceNotFoundError):
        a.get_queue_runtime_properties("nope")


def test_what_is_not_served_answers_a_clear_error(sb: LocalBroker) -> None:
    with admin(sb) as a:
        with pytest.raises(HttpResponseError, match="read-only") as refused:
            a.create_queue("new-queue")
        assert refused.value.status_code == 405
        with pytest.raises(HttpResponseError, match="read-only"):
            a.delete_queue("plain")
        with pytest.raises(HttpResponseError, match="no topics") as missing:
            list(a.list_topics())
        assert missing.value.status_code == 404


async def test_the_async_administration_client_reads_the_same_counts(sb: LocalBroker) -> None:
    async with (
        AsyncClient.from_connection_string(sb.connection_string) as c,
        c.get_queue_sender("counts-async") as sender,
    ):
        await sender.send_messages([ServiceBusMessage(f"a{i}") for i in range(2)])
    a = AsyncAdminClient.from_connection_string(
        sb.admin_connection_string, transport=AsyncPlainHttp(), retry_total=0
    )
    async with a:
        props = await a.get_queue_runtime_properties("counts-async")
        names = [q.name async for q in a.list_queues_runtime_properties()]
        with pytest.raises(ResourceNotFoundError):
            await a.get_queue("nope")
    assert (props.active_message_count, props.scheduled_message_count) == (2, 0)
    assert props.dead_letter_message_count == 0
    assert "counts-async" in names


@pytest.mark.timeout(90)
def test_the_admin_port_is_optional_and_kept_across_a_restart(tmp_path: Path) -> None:
    config = write_config(tmp_path / "Config.json", [queue("only")])
    off = start_broker(tmp_path / "off", config, log=tmp_path / "off.log", admin_port=None)
    try:
        assert off.admin_port is None
        with pytest.raises(RuntimeError, match="without an administration port"):
            off.admin_connection_string  # noqa: B018 - the property is what is tested
    finally:
        off.stop()
    on = start_broker(tmp_path / "on", config, log=tmp_path / "on.log")
    try:
        port = on.admin_port
        on.restart()
        assert on.admin_port == port
        # Served as soon as the launcher returns: the port is bound before the broker
        # prints that it listens.
        with admin(on) as a:
            assert a.get_queue_runtime_properties("only").active_message_count == 0
    finally:
        on.stop()
