"""An actor opening its storage (creating tables and container if missing) rides out
transient faults: under 30% injected storage faults a fresh PlayerShard or GameActor
opens its storage on its first call instead of failing that call."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import ray

from actors.config import ActorConfig, open_storage
from actors.shard import PlayerShard
from app.domain.faults import FaultPlan
from app.domain.placement import Placement
from devstack.processes import Azurite
from devstack.ray_cluster import RayHead
from tests.support.raypools import joined

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(300)]

# The SDKs keep their default retries: creating a table is a POST, which they do not
# retry after a transport error, so about half the opens at 30% met a fault (5 of 10).
FAULTS = 0.3


async def test_opening_storage_under_thirty_percent_faults_succeeds_every_time(
    azurite: Azurite, unique: str
) -> None:
    for seed in range(10):
        plan = FaultPlan(storage=FAULTS, seed=seed)
        storage = await open_storage(
            ActorConfig(azurite.connection_string, f"s{unique}{seed}", faults=plan)
        )
        await storage.close()


@pytest.fixture
def cluster(ray_head: RayHead) -> Iterator[RayHead]:
    """This process joined to the session's Ray head."""
    with joined(ray_head, f"open-{uuid.uuid4().hex[:8]}") as head:
        yield head


@pytest.mark.ray
async def test_a_fresh_player_shard_answers_its_first_call_under_storage_faults(
    cluster: RayHead, azurite: Azurite, unique: str
) -> None:
    shards = [
        PlayerShard.remote(  # type: ignore[attr-defined]
            0,
            ActorConfig(
                azurite.connection_string,
                f"r{unique}{seed}",
                faults=FaultPlan(storage=FAULTS, seed=100 + seed),
            ),
            Placement(1, 1, 1),
        )
        for seed in range(6)
    ]
    try:
        # ``stats`` opens the shard's storage and reads nothing else.
        for shard in shards:
            assert (await shard.stats.remote())["active"] == 0
    finally:
        for shard in shards:
            ray.kill(shard)
