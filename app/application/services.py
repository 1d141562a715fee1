"""Use cases over the ports: what the API and the CLI call."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Generic, TypeVar

from app.application.messages import MATCHES_QUEUE, match_completed
from app.application.ports import (
    CarriedStart,
    HistoryPage,
    Leaderboards,
    MessageBus,
    PayloadArchive,
    PlayerGrains,
    PlayerStore,
    SagaLog,
    SagaRecord,
)
from app.application.retrying import Deadline, retry_transient
from app.application.sagas import utc_now
from app.application.views import MatchLines, match_lines, match_view, rating_changes
from app.domain.errors import BusUnavailable, NotFound
from app.domain.model import Match
from app.domain.retry import InProcessRetry
from app.domain.saga import SagaState
from app.domain.stats import public_mode_record, public_record
from app.domain.validation import parse_match
from app.observability.logs import bind

# States in which a round may still apply players (and log a player's change again: a
# change computed from a guessed rating the player did not have is computed again).
_APPLYING = frozenset({SagaState.RUNNING, SagaState.RECOVERING, SagaState.STUCK})
log = logging.getLogger(__name__)
# A publish gets at least this long even when storing used up the deadline: the match is
# accepted by then, and a publish that fails waits for the outbox's grace period.
MIN_PUBLISH_S = 1.0
K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Submitted:
    """The outcome of a POST: ``created`` is False for an identical re-post (not for a
    retry of this POST's own write whose answer was lost)."""

    match_id: str
    created: bool
    state: str


@dataclass(frozen=True, slots=True)
class MatchDetail:
    """A match's detail and its version tag (an HTTP ETag); ``body`` is ``None`` when the
    caller already had this version."""

    etag: str
    body: dict[str, Any] | None


class _Lru(Generic[K, V]):
    """At most ``size`` entries, the least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


@dataclass
class StatsService:
    """Ingest and reads. Stateless but for a cache of immutable match payloads' views:
    every instance over the same ports answers the same."""

    sagas: SagaLog
    archive: PayloadArchive
    players: PlayerStore
    grains: PlayerGrains
    bus: MessageBus
    clock: Callable[[], datetime] = utc_now
    retry: InProcessRetry = field(default_factory=InProcessRetry)
    # Matches whose payload view is kept (~35 KB for 32 players: 256 take ~9 MB): the pages of
    # the matches being watched, not every match ever read.
    match_cache: int = 256
    # The leaderboards, for each mode's rank and percentile in a served record (``None``:
    # a record without them).
    boards: Leaderboards | None = None
    standing_timeout_s: float = 0.5
    _lines: _Lru[tuple[str, str], MatchLines] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._lines = _Lru(self.match_cache)

    async def submit_match(self, body: object) -> Submitted:
        """Validate, store (payload blob, then the summary row: the outbox), then publish
        the saga start with the summary as stored and the payload (a claim check past the
        message's size bound): the Game actor aggregates the match, and on the message's
        first delivery it reads nothing (``app.application.sagas``).

        Raises ``InvalidMatch`` (nothing stored) or ``DuplicateMatch`` (same id, other body).
        An identical re-post publishes again unless the saga has started; the bus's
        duplicate detection and the idempotent saga make a second publish harmless.

        Once the summary is stored the match is accepted: if the bus is down, the publish
        is left to the outbox sweeper (``app.application.outbox``) rather than failing the POST. The
        publish is not recorded: the saga's first save says it was delivered, and the
        sweeper publishes again what has not started after its grace period.

        Each write is retried in process on a transient error until ``retry``'s deadline
        (they are idempotent; a retry that finds the summary this POST wrote answers as
        created); past it the transient error is raised (503)."""
        match = parse_match(body, now=self.clock())
        deadline = Deadline(self.retry)
        # One acceptance time for every attempt: a row found by a retry that carries it was
        # written by this very POST (the attempt whose answer was lost), not by another.
        accepted_at = self.clock()
        attempts = 0

        async def create() -> tuple[SagaRecord, bool]:
            nonlocal attempts
            attempts += 1
            # No deltas: the Game actor aggregates, and the saga's first save logs them.
            return await self.sagas.create(match, accepted_at, {})

        with bind(match_id=match.match_id):
            await retry_transient(lambda: self.archive.put(match), deadline, "storing the payload")
            record, created = await retry_transient(create, deadline, "storing the summary")
            if attempts > 1 and record.summary.accepted_at == accepted_at:
                created = True
            if not record.summary.published:
                await self._publish_start(match, record, deadline)
            return Submitted(match.match_id, created, record.saga.state.value)

    async def _publish_start(self, match: Match, record: SagaRecord, deadline: Deadline) -> None:
        """Publish the saga's start; a failure is logged and left to the outbox sweeper
        (the match is stored). The publish gets at least ``MIN_PUBLISH_S`` of its own."""
        if deadline.remaining() < MIN_PUBLISH_S:
            deadline = Deadline(InProcessRetry(MIN_PUBLISH_S, self.retry.backoff))
        # Only a saga not yet started is carried: one voided before it started is still
        # unpublished, but its start goes bare (the coordinator loads it).
        accepted = record.saga.state is SagaState.ACCEPTED and record.seq == 0
        start = CarriedStart(record, match.canonical_json()) if accepted else None
        message = match_completed(match.match_id, start)
        try:
            await retry_transient(
                lambda: self.bus.publish(MATCHES_QUEUE, message),
                deadline,
                "publishing",
                retry_on=(BusUnavailable,),
                timeout_error=BusUnavailable,
                cut_off=False,
            )
        except Exception as exc:  # stored: the sweeper publishes it later
            log.warning(
                "match %s stored but not published (%s: %s); the outbox sweeper will",
                match.match_id,
                type(exc).__name__,
                exc,
            )

    async def match(
        self, match_id: str, known: Callable[[str], bool] = lambda _: False
    ) -> MatchDetail:
        """Teams, lines, saga state, per-player status and the saga log, with a version
        tag that changes whenever any of it may have; ``NotFound``. When ``known(tag)``
        (the caller has this version), the body is ``None`` and only the summary is read.

        The payload's part is built once per payload and kept (``match_cache`` of them):
        polling a running saga's page costs two table reads, not a blob read and a
        re-aggregation of every event each time."""
        record = await self.sagas.load(match_id)
        # Every save of the saga (state, player rows and log rows in one transaction)
        # changes the summary row's etag, and the payload never changes under its hash.
        tag = '"' + hashlib.sha256(f"{match_id}\n{record.etag}".encode()).hexdigest()[:32] + '"'
        if known(tag):
            return MatchDetail(tag, None)
        entries = await self.sagas.log(match_id)
        key = (match_id, record.summary.payload_hash)
        lines = self._lines.get(key)
        if lines is None:
            payload = await self.archive.get(match_id, record.summary.payload_hash)
            lines = match_lines(parse_match(payload, now=None))
            self._lines.put(key, lines)
        if lines.ratings is None and record.saga.state is not SagaState.ACCEPTED:
            # Logged by the first save, and again for a player a round rated again (a
            # guessed rating that was not theirs): kept once no player can be applied.
            ratings = rating_changes(await self.sagas.deltas(match_id))
            lines = replace(lines, ratings=ratings)
            if record.saga.state not in _APPLYING:
                self._lines.put(key, lines)
        return MatchDetail(tag, match_view(record, entries, lines))

    async def player_stats(self, player_id: str, mode: str | None = None) -> dict[str, Any]:
        """The service record served by the player's grain, or its block of one ``mode``;
        ``NotFound`` if the player never played."""
        record = await self.grains.service_record(player_id)
        if record.counters.get("matches", 0) == 0 and record.first_played is None:
            raise NotFound(f"player {player_id!r} has no matches")
        if mode is not None:
            block = public_mode_record(record, mode)
            block["standing"] = (await self._standings(player_id, [mode])).get(mode)
            return block
        out = public_record(record)
        found = await self._standings(player_id, list(out["modes"]))
        for name, block in out["modes"].items():
            block["standing"] = found.get(name)
        return out

    async def _standings(self, player_id: str, modes: list[str]) -> dict[str, Any]:
        """The player's rank and percentile on each mode's boards, as far as the boards
        answer within ``standing_timeout_s``: a record is served without them (a mode's
        ``standing`` null) rather than late or not at all when the boards are slow or
        down; they are eventually consistent anyway."""
        if self.boards is None or not modes:
            return {}
        boards = self.boards
        try:
            answers = await asyncio.wait_for(
                asyncio.gather(*(boards.standing(m, player_id) for m in modes)),
                self.standing_timeout_s,
            )
        except Exception as exc:  # TimeoutError, PoolUnavailable, a Ray error
            log.info("standings of %s not served: %s", player_id, exc)
            return {}
        return {
            mode: {stat: asdict(s) for stat, s in found.items()} or None
            for mode, found in zip(modes, answers, strict=True)
        }

    async def player_matches(
        self, player_id: str, limit: int, continuation: str | None
    ) -> HistoryPage:
        """A page of match history, newest first (a read-only query of the partition: it
        needs no grain turn, and ``m:`` rows are immutable once written but for ``void``)."""
        return await self.players.history(player_id, limit, continuation)
