"""Injected storage faults come out of the real SDK as the real exceptions, mapped to
``StorageUnavailable``; a lost answer still leaves the write done (idempotency matters)."""

from __future__ import annotations

import random

import pytest

from app.devstack import Azurite
from app.domain.errors import NotFound, StorageUnavailable
from app.domain.faults import FaultPlan
from app.domain.model import Match
from app.domain.validation import parse_match
from storage.tables import open_table_storage
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


async def test_a_lost_answer_leaves_the_write_done(azurite: Azurite, unique: str) -> None:
    healthy = await open_table_storage(azurite.connection_string, f"g{unique}")
    plan = FaultPlan(storage=0.5, seed=3)
    for _ in range(50):  # opening makes calls too: start over until they all pass
        try:
            flaky = await open_table_storage(azurite.connection_string, f"g{unique}", plan, 0)
            break
        except StorageUnavailable:
            continue
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
