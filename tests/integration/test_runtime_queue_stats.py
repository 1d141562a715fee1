"""The composition root opens ``QueueStats`` for the api role, on the administration API
of the configured namespace (here the local broker's), and closes it with the runtime."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from app.application.messages import MATCHES_QUEUE, PLAYER_UPDATES_QUEUE, match_completed
from app.application.ports import QueueDepth
from app.bootstrap import build_runtime
from app.settings import Settings
from devstack.processes import Azurite
from tests.conftest import BrokerFactory
from tests.support.servicebus import project_queues

pytestmark = [pytest.mark.azurite, pytest.mark.broker, pytest.mark.timeout(120)]


async def test_the_api_role_reads_queue_depths_where_the_settings_say(
    azurite: Azurite, broker_factory: BrokerFactory, unique: str
) -> None:
    broker = broker_factory(project_queues(), name="runtime-broker")
    settings = Settings(
        storage_connection_string=SecretStr(azurite.connection_string),
        servicebus_connection_string=SecretStr(broker.connection_string),
        servicebus_admin_connection_string=SecretStr(broker.admin_connection_string),
        storage_prefix=f"rt{unique}",
    )
    runtime = await build_runtime(settings, api=True, worker=False)
    try:
        assert runtime.queue_stats is not None
        await runtime.bus.publish(MATCHES_QUEUE, match_completed(f"m-{unique}"))
        assert await runtime.queue_stats.depths([MATCHES_QUEUE, PLAYER_UPDATES_QUEUE]) == {
            MATCHES_QUEUE: QueueDepth(active=1),
            PLAYER_UPDATES_QUEUE: QueueDepth(),
        }
    finally:
        await runtime.close()

    worker_only = await build_runtime(settings, api=False, worker=True)
    try:
        assert worker_only.queue_stats is None
    finally:
        await worker_only.close()
