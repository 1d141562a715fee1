"""An actor opening its storage (creating tables and container if missing) rides out
transient faults: under 30% injected storage faults a fresh PlayerShard or GameActor
opens its storage on its first call instead of failing it."""

from __future__ import annotations

import pytest

from actors.config import ActorConfig, open_storage
from app.devstack import Azurite
from app.domain.faults import FaultPlan

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(120)]


async def test_opening_storage_under_thirty_percent_faults_succeeds_every_time(
    azurite: Azurite, unique: str
) -> None:
    # The SDKs keep their default retries: creating a table is a POST, which they do
    # not retry after a transport error, so about half the opens met a fault.
    for seed in range(10):
        config = ActorConfig(
            azurite.connection_string, f"s{unique}{seed}", faults=FaultPlan(storage=0.3, seed=seed)
        )
        storage = await open_storage(config)
        await storage.close()
