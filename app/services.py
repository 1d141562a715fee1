"""Use cases over the ports: what the API and the CLI call."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.domain.codec import event_to_dict
from app.domain.errors import NotFound
from app.domain.stats import public_record
from app.domain.validation import parse_match
from app.outbox import publish_saga_start
from app.ports import (
    HistoryPage,
    MessageBus,
    PayloadArchive,
    PlayerGrains,
    PlayerStore,
    SagaLog,
    SagaRecord,
)
from app.sagas import utc_now

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Submitted:
    """The outcome of a POST: ``created`` is False for an identical re-post."""

    match_id: str
    created: bool
    state: str


@dataclass
class StatsService:
    """Ingest and reads. Stateless: every instance over the same ports behaves the same."""

    sagas: SagaLog
    archive: PayloadArchive
    players: PlayerStore
    grains: PlayerGrains
    bus: MessageBus
    clock: Callable[[], datetime] = utc_now

    async def submit_match(self, body: object) -> Submitted:
        """Validate, store (payload blob, then the summary row: the outbox), then publish.

        Raises ``InvalidMatch`` (nothing stored) or ``DuplicateMatch`` (same id, other body).
        An identical re-post publishes again if the first publish never happened; the bus's
        duplicate detection and the idempotent saga make a second publish harmless.

        Once the summary is stored the match is accepted: if the bus is down, the publish
        is left to the outbox sweeper (``app.outbox``) rather than failing the POST."""
        match = parse_match(body, now=self.clock())
        await self.archive.put(match)
        record, created = await self.sagas.create(match, self.clock())
        if not record.summary.published:
            try:
                await publish_saga_start(self.sagas, self.bus, match.match_id)
            except Exception as exc:  # stored: the sweeper publishes it later
                log.warning(
                    "match %s stored but not published (%s: %s); the outbox sweeper will",
                    match.match_id,
                    type(exc).__name__,
                    exc,
                )
        return Submitted(match.match_id, created, record.saga.state.value)

    async def match(self, match_id: str) -> dict[str, Any]:
        """Summary, saga state, per-player status and the saga log; ``NotFound``."""
        record = await self.sagas.load(match_id)
        entries = await self.sagas.log(match_id)
        return match_view(
            record,
            [{"seq": e.seq, "at": e.at.isoformat(), **event_to_dict(e.event)} for e in entries],
        )

    async def player_stats(self, player_id: str) -> dict[str, Any]:
        """The service record served by the player's grain; ``NotFound`` if never played."""
        record = await self.grains.service_record(player_id)
        if record.counters.get("matches", 0) == 0 and record.first_played is None:
            raise NotFound(f"player {player_id!r} has no matches")
        return public_record(record)

    async def player_matches(
        self, player_id: str, limit: int, continuation: str | None
    ) -> HistoryPage:
        """A page of match history, newest first (a read-only query of the partition: it
        needs no grain turn, and ``m:`` rows are immutable once written but for ``void``)."""
        return await self.players.history(player_id, limit, continuation)


def match_view(record: SagaRecord, log_rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """``GET /v1/matches/{id}``: the match, its saga, and how long consistency took."""
    summary, saga = record.summary, record.saga
    ttc = None
    if summary.finished_at is not None:
        ttc = round((summary.finished_at - summary.accepted_at).total_seconds(), 3)
    players = []
    for pid in summary.player_ids:
        progress = saga.players.get(pid)
        players.append(
            {
                "player_id": pid,
                "status": progress.status.value if progress else "pending",
                "attempts": progress.attempts if progress else 0,
                "error": progress.error if progress else None,
            }
        )
    return {
        "match_id": summary.match_id,
        "state": saga.state.value,
        "mode": summary.mode,
        "map": summary.map,
        "started_at": summary.started_at.isoformat(),
        "ended_at": summary.ended_at.isoformat(),
        "accepted_at": summary.accepted_at.isoformat(),
        "finished_at": summary.finished_at.isoformat() if summary.finished_at else None,
        "time_to_consistency_s": ttc,
        "players": players,
        "log": list(log_rows),
    }
