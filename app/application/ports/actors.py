"""What the use cases ask of the actor pools: player grains, saga runners, placement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from app.application.ports.bus import BusMessage
from app.domain.placement import Placement, PoolName
from app.domain.ratings import SkillRating
from app.domain.saga import Action
from app.domain.stats import ServiceRecord, StatDelta

if TYPE_CHECKING:  # the commands carry a ``CarriedStart``, a port's type: no import cycle
    from app.application.commands import SagaCommand


@dataclass(frozen=True, slots=True)
class PlayerUpdate:
    """One idempotent step on one player: apply or compensate one match."""

    action: Action
    delta: StatDelta


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """How one ``PlayerUpdate`` ended."""

    player_id: str
    match_id: str
    ok: bool
    changed: bool = False  # applied or reverted by this call (False: it had been before)
    error: str | None = None
    transient: bool = True
    # Not applied (``ok`` False): its rating change was computed from a guessed (default)
    # rating, and the player has this one in the mode. The saga rates the player again
    # from it, logs that change and applies it (``saga_ratings.log_rerated``).
    rerate: SkillRating | None = None


@dataclass(frozen=True, slots=True)
class RatingRead:
    """A player's rating in one mode as the Game actor got it: read from the grain, or
    ``guessed`` (the default rating, unread: the shard guessed the player is new)."""

    rating: SkillRating
    guessed: bool = False


class PlayerGrains(Protocol):
    """The virtual player grains: every read and write of a player goes through them."""

    async def update(self, updates: Sequence[PlayerUpdate]) -> list[UpdateResult]:
        """Run the updates (grouped by shard, concurrently); per-player failures come back
        as results, never as exceptions, so one bad player never hides the others."""
        ...

    async def service_record(self, player_id: str) -> ServiceRecord:
        """The player's record as the grain holds it (activating it if needed)."""
        ...

    async def ratings(self, mode: str, player_ids: Sequence[str]) -> dict[str, RatingRead]:
        """The players' current ratings in ``mode`` (the default one for a player new to
        it), as their grains hold them, or guessed (the default one, unread, for a player
        with no activation whom the shard guesses is new: their first apply checks).
        A player whose grain could not be read (its shard down, its storage failing) is
        missing from the answer, never an exception: the Game actor rates the match
        without it (``ratings.rate_match``)."""
        ...


# ---- saga runners ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message a coordinator wants sent: to a queue now, or ``delay_s`` later."""

    queue: str
    message: BusMessage
    delay_s: float | None = None


@dataclass(frozen=True, slots=True)
class SagaFinish:
    """A call finished its saga: the state it ended in and how long it took, in seconds
    (``None`` where the record cannot tell)."""

    state: str  # completed or compensated
    saga_s: float | None  # began → finished: this run of the saga
    consistency_s: float | None  # accepted → finished, on the saga's first finish only


@dataclass(frozen=True, slots=True)
class SagaReply:
    """A saga's state after a call, what the caller must send before it settles, and
    ``finished`` when this call is the one that finished the saga."""

    state: str
    outbox: tuple[OutgoingMessage, ...] = ()
    finished: SagaFinish | None = None


class SagaRunner(Protocol):
    """Where sagas run: the GameActor pool, or in process for tests."""

    async def handle(self, command: SagaCommand) -> SagaReply:
        """Run one saga command (the coordinator method of its type) and reply."""
        ...


# ---- pools -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredPlacement:
    """The pool directory's durable state: the placement in force, and the sizes the
    deployment configured when it was last reconciled (a changed setting wins over an
    operator's resize; an unchanged one does not undo it)."""

    placement: Placement
    configured_game: int
    configured_player: int
    updated_at: datetime
    # ``None``: stored before the board pool was one of the directory's (its placement's
    # board size is then no decision of anyone's): read it as configured (``with_board``).
    configured_board: int | None = None

    def configured(self, pool: PoolName) -> int | None:
        """The size the deployment configured for ``pool`` when last reconciled."""
        sizes = {
            "game": self.configured_game,
            "player": self.configured_player,
            "board": self.configured_board,
        }
        return sizes[pool]

    def with_board(self, configured: int) -> StoredPlacement:
        """This placement, its board size read as ``configured`` when it was stored
        without one (the fixed board pool of before ran that many members); unchanged
        otherwise. Same version: nothing was resized."""
        if self.configured_board is not None:
            return self
        return replace(
            self, placement=replace(self.placement, board=configured), configured_board=configured
        )


class PlacementStore(Protocol):
    """Where the pool directory keeps its placement, so that it survives the directory."""

    async def load(self) -> StoredPlacement | None:
        """The stored placement, or ``None`` before the first one."""
        ...

    async def save(self, stored: StoredPlacement) -> None:
        """Store ``stored``; a version older than the stored one raises ``Conflict``."""
        ...


class PoolAdmin(Protocol):
    """The operators' view of the actor pools, and their resize control."""

    async def describe(self) -> dict[str, Any]:
        """Sizes, placement version, and each member's node and counters."""
        ...

    async def resize(self, pool: PoolName, size: int) -> dict[str, Any]:
        """Resize ``pool`` (start or drain and stop members); then ``describe()``."""
        ...
