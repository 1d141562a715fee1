"""Ingest rides out transient storage faults: at 10% injected faults on the real Azurite
(half of them after the write was made) almost every POST answers 202 at its first try,
each accepted match is stored once and published once; a storage that stays down
answers 503 with ``Retry-After`` once the in-process retry deadline has passed."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest
from azure.data.tables.aio import TableServiceClient

from actors.grains import PlayerGrainHost
from app.application.messages import MATCHES_QUEUE, carried_start
from app.application.operations import Operations
from app.application.ports import BusMessage
from app.application.sagas import utc_now
from app.application.services import StatsService
from app.domain.errors import NotFound
from app.domain.faults import FaultPlan
from app.domain.retry import InProcessRetry
from app.domain.validation import parse_match
from app.entrypoints.api import create_app
from app.settings import Settings
from devstack.processes import Azurite
from storage.fault_injection import FaultyTransport
from storage.memory_bus import InMemoryMessageBus
from storage.table_sagas import TableSagaLog
from storage.tables import TableStorage, open_table_storage
from tests.integration.test_fault_injection import open_flaky
from tests.support.matches import random_match

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(240)]

INGEST_KEY = "ingest-key-for-fault-tests"


@dataclass
class CountingBus(InMemoryMessageBus):
    """The in-memory bus, counting every publish call: its duplicate detection would hide
    a second publish of one match, which this test must see."""

    published: Counter[str] = field(default_factory=Counter)
    last: dict[str, BusMessage] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__()

    async def publish(self, queue: str, message: BusMessage) -> None:
        if queue == MATCHES_QUEUE:
            self.published[message.message_id] += 1
            self.last[message.message_id] = message
        await super().publish(queue, message)


def client_for(service: StatsService) -> httpx.AsyncClient:
    settings = Settings(api_keys=f"{INGEST_KEY}:ingest", ingest_rate_per_s=0)
    app = create_app(settings, service, Operations(service.sagas, service.bus))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://statsaga",
        headers={"Authorization": f"Bearer {INGEST_KEY}"},
    )


@pytest.fixture
async def healthy(azurite: Azurite, unique: str) -> AsyncIterator[TableStorage]:
    opened = await open_table_storage(azurite.connection_string, f"i{unique}")
    yield opened
    await opened.close()


async def test_at_ten_percent_storage_faults_almost_every_post_is_accepted_at_once(
    azurite: Azurite, unique: str, healthy: TableStorage
) -> None:
    # The SDKs keep their default retries, as in production: only what gets through them
    # (a POST's transport errors, a retried PUT's lost answers) reaches statsaga.
    flaky = await open_flaky(azurite, f"i{unique}", FaultPlan(storage=0.1, seed=20), None)  # type: ignore[arg-type]
    bus = CountingBus()
    service = StatsService(
        flaky.sagas, flaky.archive, flaky.players, PlayerGrainHost(flaky.players), bus
    )
    rng = random.Random(20)
    population = [f"p{unique}-{i}" for i in range(40)]
    posted = [random_match(rng, f"m{unique}-{i}", population, size=4) for i in range(150)]
    statuses: Counter[int] = Counter()
    accepted: list[dict[str, object]] = []
    try:
        async with client_for(service) as http:
            for body in posted:
                response = await http.post("/v1/matches", json=body)
                statuses[response.status_code] += 1
                if response.status_code == 202:
                    accepted.append(body)
    finally:
        await flaky.close()
    first_try_rate = statuses[202] / len(posted)
    print(f"first-try 202 rate at 10% storage faults: {first_try_rate:.3f} {dict(statuses)}")
    assert first_try_rate >= 0.99, statuses
    assert set(statuses) <= {202, 503}, statuses  # never 200 (a lost answer is not a re-post)

    for body in accepted:
        match = parse_match(body, now=None)
        record, deltas = await healthy.sagas.load_with_deltas(match.match_id)
        assert record.summary.payload_hash == match.payload_hash()
        assert deltas == {}  # the Game actor aggregates; the saga's first save logs them
        # The start message carries the record as stored (a retried write's too) and the
        # payload: the Game actor reads nothing on its first delivery.
        carried = carried_start(bus.last[match.match_id].body)
        assert carried is not None and carried.record == record
        assert carried.payload == match.canonical_json()
        assert await healthy.archive.get(match.match_id, match.payload_hash()) == (
            parse_match(body, now=None).to_dict()
        )
        blobs = healthy.blobs.get_container_client(healthy.archive_container)
        names = [b.name async for b in blobs.list_blobs(name_starts_with=f"{match.match_id}/")]
        assert names == [f"{match.match_id}/{match.payload_hash()}.json"]
        assert bus.published[match.match_id] == 1, match.match_id
    assert sum(bus.published.values()) == len(accepted)


async def test_storage_that_stays_down_answers_503_with_retry_after_within_the_deadline(
    azurite: Azurite, unique: str, healthy: TableStorage
) -> None:
    """The payload archive answers, the tables do not: the POST gives up at the deadline.
    What it leaves is the payload blob alone, which nothing reads without a summary and
    which a later post of the same body finds in place; no summary, no index row."""
    outage = FaultyTransport(FaultPlan())
    tables = TableServiceClient.from_connection_string(azurite.connection_string, transport=outage)
    sagas = TableSagaLog(tables.get_table_client(f"i{unique}matches"))
    bus = CountingBus()
    deadline_s = 1.0
    service = StatsService(
        sagas,
        healthy.archive,
        healthy.players,
        PlayerGrainHost(healthy.players),
        bus,
        retry=InProcessRetry(deadline_s=deadline_s),
    )
    body = random_match(random.Random(3), f"m{unique}-down", [f"p{unique}-{i}" for i in range(4)])
    outage.plan = FaultPlan(storage=1.0)
    try:
        async with client_for(service) as http:
            started = time.monotonic()
            response = await http.post("/v1/matches", json=body)
            elapsed = time.monotonic() - started
            assert response.status_code == 503
            assert int(response.headers["Retry-After"]) >= 1
            # The deadline bounds the answer (generous slack: a shared, loaded machine).
            assert elapsed < deadline_s + 2.0, elapsed
            with pytest.raises(NotFound):
                await healthy.sagas.load(body["match_id"])
            match = parse_match(body, now=None)  # the one trace: the content-addressed payload
            assert await healthy.archive.get(match.match_id, match.payload_hash())
            assert await healthy.sagas.unpublished(utc_now() + timedelta(days=1), 1000) == []
            assert bus.published == Counter()

            outage.plan = FaultPlan()  # back up: the same post is accepted now
            again = await http.post("/v1/matches", json=body)
            assert again.status_code == 202
            assert bus.published[body["match_id"]] == 1
    finally:
        await tables.close()
