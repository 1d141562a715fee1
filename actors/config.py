"""What every actor needs to build its own adapters (actors share no memory)."""

from __future__ import annotations

from dataclasses import dataclass, field

from actors.grains import GrainSettings
from app.domain.retry import RetryPolicy

NAMESPACE_DEFAULT = "statsaga"


@dataclass(frozen=True, slots=True)
class ActorConfig:
    """Plain, picklable configuration handed to each actor at creation."""

    storage_connection_string: str
    storage_prefix: str = ""
    namespace: str = NAMESPACE_DEFAULT
    game_pool_size: int = 2
    player_pool_size: int = 2
    grains: GrainSettings = field(default_factory=GrainSettings)
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)


def shard_name(index: int) -> str:
    """Ray name of player shard ``index``."""
    return f"player-shard-{index}"


def game_name(index: int) -> str:
    """Ray name of game actor ``index``."""
    return f"game-{index}"
