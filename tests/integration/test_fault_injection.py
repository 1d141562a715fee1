"""Injected storage faults come out of the real SDK as the real exceptions, mapped to
``StorageUnavailable``; a lost answer still leaves the write done (idempotency matters)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from app.application.ports import PlayerSnapshot
from app.domain.errors import NotFound, StorageUnavailable
from app.domain.faults import FaultPlan
from app.domain.model import Match
from app.domain.stats import ServiceRecord
from app.domain.validation import parse_match
from devstack.processes import Azurite
from storage.tables import TableStorage, open_table_storage
from tests.contract.test_player_store import delta
from tests.support.matches import random_match

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(60)]


def a_match(match_id: str) -> Match:
    body = random_match(random.Random(1), match_id, [f"{match_id}-p{i}" for i in range(4)], size=2)
    return parse_match(body, now=None)


async def test_every_call_failing_surfaces_as_storage_unavailable(
    azurite: Azurite, unique: str
) -> None:
    with pytest.raises(StorageUnavailable):  # creating the tables already fails
        await open_table_storage(
            azurite.connection_string, f"f{unique}", FaultPlan(storage=1.0, seed=1), 0
        )
    healthy = await open_table_storage(azurite.connection_string, f"f{unique}")
    try:
        with pytest.raises(NotFound):  # without faults the same call reaches the table
            await healthy.sagas.load("m-any")
    finally:
        await healthy.close()


async def open_flaky(
    azurite: Azurite, prefix: str, plan: FaultPlan, sdk_retries: int
) -> TableStorage:
    """Open storage through a faulty transport (opening makes calls too: start over until
    they all pass)."""
    for _ in range(50):
        try:
            return await open_table_storage(azurite.connection_string, prefix, plan, sdk_retries)
        except StorageUnavailable:
            continue
    raise AssertionError("could not open the storage in 50 tries")


async def test_a_lost_answer_leaves_the_write_done(azurite: Azurite, unique: str) -> None:
    healthy = await open_table_storage(azurite.connection_string, f"g{unique}")
    flaky = await open_flaky(azurite, f"g{unique}", FaultPlan(storage=0.5, seed=3), 0)
    try:
        outcomes = {"ok": 0, "failed": 0}
        created_despite_error = 0
        for i in range(30):
            match = a_match(f"m{unique}{i}")
            try:
                await flaky.archive.put(match)
                outcomes["ok"] += 1
            except StorageUnavailable:
                outcomes["failed"] += 1
                try:
                    await healthy.archive.get(match.match_id, match.payload_hash())
                    created_despite_error += 1
                except NotFound:
                    pass
        assert outcomes["ok"] > 0 and outcomes["failed"] > 0
        assert created_despite_error > 0  # some failures happened after the write
    finally:
        await flaky.close()
        await healthy.close()


async def test_player_transactions_go_through_injected_faults(
    azurite: Azurite, unique: str
) -> None:
    """A player write is one transaction through the SDK's transport: faults surface as
    ``StorageUnavailable`` (the SDK's retry policy does not retry a POST after a transport
    error), and the caller's replay of a write whose answer was lost finds its own marker
    (409 at index 0: ``already``), so a match is counted once whatever happened."""
    healthy = await open_table_storage(azurite.connection_string, f"t{unique}")
    flaky = await open_flaky(azurite, f"t{unique}", FaultPlan(storage=0.4, seed=5), 0)
    try:
        outcomes: Counter[str] = Counter()
        for i in range(60):
            pid = f"p{unique}x{i}"
            snapshot = PlayerSnapshot(ServiceRecord(pid))
            for attempt in range(20):
                try:
                    out = await flaky.players.apply(snapshot, [delta(pid, 1)])
                except StorageUnavailable:
                    continue
                retried = "retried, " if attempt else ""
                outcomes[retried + ("applied" if out.applied else "already")] += 1
                break
            stored = await healthy.players.load(pid)
            history = (await healthy.players.history(pid, 5)).entries
            assert len(history) == 1 and stored.record.counters["matches"] == 1
        assert outcomes["applied"] and outcomes["retried, applied"], outcomes
        assert outcomes["retried, already"] and not outcomes["already"], outcomes
    finally:
        await flaky.close()
        await healthy.close()
