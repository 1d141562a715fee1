"""What every actor needs to build its own adapters (actors share no memory)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from actors.grains import GrainSettings
from app.application.retrying import Deadline, retry_transient
from app.domain.faults import FaultPlan
from app.domain.placement import PoolName
from app.domain.retry import InProcessRetry, RetryPolicy
from app.observability.logs import LogFormat, configure_logging, connection_secrets

if TYPE_CHECKING:
    from storage.tables import TableStorage

NAMESPACE_DEFAULT = "statsaga"
# Opening is part of an actor's first call, which fails as a whole if opening does; the
# calls it makes (create table, create container) are idempotent.
OPEN_RETRY = InProcessRetry(deadline_s=10.0, attempt_timeout_s=3.0)
DIRECTORY_NAME = "pool-directory"


@dataclass(frozen=True, slots=True)
class ActorConfig:
    """Plain, picklable configuration handed to each actor at creation."""

    storage_connection_string: str
    storage_prefix: str = ""
    namespace: str = NAMESPACE_DEFAULT
    game_pool_size: int = 2
    player_pool_size: int = 2
    board_actors: int = 1
    board_snapshot_interval_s: float = 10.0
    grains: GrainSettings = field(default_factory=GrainSettings)
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    faults: FaultPlan = field(default_factory=FaultPlan)
    sdk_retries: int | None = None
    log_level: str = "INFO"
    log_format: LogFormat = "json"


def configure_actor_logging(config: ActorConfig, role: str) -> None:
    """Log as the other processes do (Ray leaves an actor's root logger at WARNING, with no
    handler): to stderr, which Ray writes to the worker's log file and forwards to the
    driver of the job that created the actor."""
    configure_logging(
        config.log_level,
        config.log_format,
        role,
        secrets=connection_secrets(config.storage_connection_string),
    )


async def open_storage(config: ActorConfig) -> TableStorage:
    """The storage adapters an actor holds for its life (dropping them would leak their
    HTTP sessions). Opened inside the actor: clients bind to its event loop. Transient
    failures are retried for up to ``OPEN_RETRY``'s deadline."""
    from storage.tables import open_table_storage

    return await retry_transient(
        lambda: open_table_storage(
            config.storage_connection_string,
            config.storage_prefix,
            config.faults,
            config.sdk_retries,
        ),
        Deadline(OPEN_RETRY),
        "opening storage",
    )


def member_name(pool: PoolName, index: int) -> str:
    """Ray name of member ``index`` of ``pool``."""
    prefixes: dict[PoolName, str] = {"game": "game", "player": "player-shard", "board": "board"}
    return f"{prefixes[pool]}-{index}"
