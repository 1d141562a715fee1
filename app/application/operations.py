"""What operators do to sagas: list them by state, re-drive, void a match (backward
recovery), look at dead letters and replay them; and the stall sweeper that re-drives
sagas that stopped moving on its own.

Everything goes through the bus: the API and the CLI publish a message and the worker
runs it on the GameActor pool, so an operator's command is as durable as a match and needs
no Ray in the process that issues it.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from app.application import messages
from app.application.messages import MATCHES_QUEUE, PLAYER_UPDATES_QUEUE, log_fields
from app.application.periodic import Sweeper
from app.application.ports import (
    DEAD_LETTER_DESCRIPTION,
    DEAD_LETTER_REASON,
    BusMessage,
    MessageBus,
    ReceivedMessage,
    SagaLog,
    SagaRecord,
    dead_letter_queue,
)
from app.application.sagas import utc_now
from app.domain.errors import Conflict
from app.domain.ids import bus_message_id
from app.domain.saga import OPEN_STATES, PlayerStatus, SagaState
from app.observability.logs import bind

log = logging.getLogger(__name__)
DEAD_LETTER_QUEUES = (MATCHES_QUEUE, PLAYER_UPDATES_QUEUE)
# A stall is judged by the last save; these states wait on something that can be lost.
REPLAY_MARK = ":replay:"
_CAN_STALL = {SagaState.RUNNING, SagaState.RECOVERING, SagaState.COMPENSATING}


def replay_id(message_id: str) -> str:
    """A fresh id for a replayed message (the bus would drop a repeat of the old one as a
    duplicate), keeping the original's: replayed again and again, it does not grow past
    Service Bus's 128 characters (a long one is shortened by ``bus_message_id``)."""
    original = message_id.split(REPLAY_MARK, 1)[0]
    return bus_message_id(original, "replay", uuid.uuid4().hex[:8])


def saga_view(record: SagaRecord) -> dict[str, Any]:
    """One line of ``GET /v1/admin/sagas``."""
    summary, saga = record.summary, record.saga
    statuses = Counter(p.status.value for p in saga.players.values())
    return {
        "match_id": summary.match_id,
        "state": saga.state.value,
        "accepted_at": summary.accepted_at.isoformat(),
        "updated_at": summary.updated_at.isoformat() if summary.updated_at else None,
        "finished_at": summary.finished_at.isoformat() if summary.finished_at else None,
        "published": summary.published,
        "players": dict(sorted(statuses.items())),
        "dead": sorted(p for p, s in saga.players.items() if s.status is PlayerStatus.DEAD),
    }


def is_stalled(record: SagaRecord, updated_before: datetime) -> bool:
    """Published, unfinished, not waiting for an operator, and unchanged since the cutoff."""
    summary, state = record.summary, record.saga.state
    last = summary.updated_at or summary.accepted_at
    if state is SagaState.ACCEPTED:
        return summary.published and last < updated_before
    return state in _CAN_STALL and last < updated_before


def dead_letter_view(queue: str, message: BusMessage) -> dict[str, Any]:
    """One line of ``GET /v1/admin/deadletters``."""
    body = dict(message.body)
    return {
        "queue": queue,
        "message_id": message.message_id,
        "subject": message.subject,
        "reason": body.pop(DEAD_LETTER_REASON, None),
        "description": body.pop(DEAD_LETTER_DESCRIPTION, None),
        "match_id": body.get("match_id"),
        "player_id": body.get("player_id"),
        "body": body,
    }


@dataclass
class ReplayReport:
    """What a replay did with each dead letter it took."""

    replayed: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON answer."""
        return {"replayed": self.replayed, "dropped": self.dropped}


@dataclass
class Operations:
    """The operator's use cases over the saga log and the bus."""

    sagas: SagaLog
    bus: MessageBus
    clock: Callable[[], datetime] = utc_now

    async def list_sagas(self, state: SagaState | None, limit: int) -> list[dict[str, Any]]:
        """Sagas in ``state`` (every unfinished one when ``None``), oldest first for open
        states (from the open-saga index), any order for finished ones (a scan)."""
        if state is None or state in OPEN_STATES:
            records = await self.sagas.open_sagas(self.clock(), limit, state)
            records.sort(key=lambda r: r.summary.accepted_at)
        else:
            records = await self.sagas.sagas_in_state(state, limit)
        return [saga_view(r) for r in records]

    async def redrive(self, match_id: str) -> dict[str, Any]:
        """A stuck saga: its dead players are tried again from attempt zero. Any other
        unfinished saga: moved on now (overdue retries included). ``NotFound``;
        ``Conflict`` for a finished one."""
        with bind(match_id=match_id):
            record = await self.sagas.load(match_id)
            state = record.saga.state
            if state is SagaState.STUCK:
                message = messages.match_redrive(match_id, record.seq)
            elif state is SagaState.ACCEPTED and not record.summary.published:
                raise Conflict(
                    f"match {match_id} has not started yet; if it does not, the outbox "
                    "sweeper publishes it again"
                )
            elif state in OPEN_STATES:
                message = messages.match_resume(match_id, record.seq)
            else:
                raise Conflict(f"saga of match {match_id} is {state.value}: nothing to re-drive")
            await self.bus.publish(MATCHES_QUEUE, message)
            log.info("match %s: %s requested (was %s)", match_id, message.subject, state.value)
            return {"match_id": match_id, "state": state.value, "requested": message.subject}

    async def invalidate(self, match_id: str, reason: str) -> dict[str, Any]:
        """Void a match: its compensation saga subtracts it from every player. Repeating
        the request is harmless; ``NotFound`` for an unknown match."""
        with bind(match_id=match_id):
            record = await self.sagas.load(match_id)
            state = record.saga.state
            if state is not SagaState.COMPENSATED:
                message = messages.match_invalidated(match_id, reason)
                await self.bus.publish(MATCHES_QUEUE, message)
                log.info("match %s: invalidation requested (%s)", match_id, reason or "no reason")
        return {
            "match_id": match_id,
            "state": state.value,
            "requested": None if state is SagaState.COMPENSATED else messages.INVALIDATED,
        }

    async def dead_letters(self, queue: str | None, limit: int) -> list[dict[str, Any]]:
        """Dead letters of one queue or of both, without taking them."""
        found: list[dict[str, Any]] = []
        for name in _queues(queue):
            for message in await self.bus.peek(dead_letter_queue(name), limit - len(found)):
                found.append(dead_letter_view(name, message))
            if len(found) >= limit:
                break
        return found

    async def replay(
        self, queue: str | None, message_ids: Sequence[str] | None = None, limit: int = 1000
    ) -> ReplayReport:
        """Take dead letters (all, or those with the given ids) and send them again:
        a dead player's step re-drives its saga, any other message goes back to its queue
        under a fresh id (the old one may still be in the duplicate-detection window).
        A dead letter about a saga that has moved on since is dropped, and reported."""
        wanted = set(message_ids) if message_ids else None
        report = ReplayReport()
        for name in _queues(queue):
            held: list[ReceivedMessage] = []  # skipped ones stay locked until the end
            try:
                while len(report.replayed) + len(report.dropped) < limit:
                    batch = await self.bus.receive(dead_letter_queue(name), 32, 1.0)
                    if not batch:
                        break
                    for received in batch:
                        if wanted is not None and received.message.message_id not in wanted:
                            held.append(received)
                            continue
                        with bind(**log_fields(received.message)):
                            await self._replay_one(name, received, report)
            finally:
                for received in held:
                    with contextlib.suppress(Exception):  # the lock expires anyway
                        await self.bus.abandon(received)
        return report

    async def _replay_one(
        self, queue: str, received: ReceivedMessage, report: ReplayReport
    ) -> None:
        view = dead_letter_view(queue, received.message)
        body = view["body"]
        line = {k: view[k] for k in ("queue", "message_id", "match_id", "player_id")}
        if queue == PLAYER_UPDATES_QUEUE and body.get("dead_letter"):
            match_id = str(body.get("match_id", ""))
            why_not = await self._redrive_dead_player(match_id)
            if why_not is None:
                report.replayed.append({**line, "as": f"re-drive of match {match_id}"})
            else:
                report.dropped.append({**line, "why": f"dropped: {why_not}"})
        else:
            old = received.message
            message = BusMessage(replay_id(old.message_id), body, old.subject)
            await self.bus.publish(queue, message)
            report.replayed.append({**line, "as": f"sent to {queue} as {message.message_id}"})
        await self.bus.complete(received)

    async def _redrive_dead_player(self, match_id: str) -> str | None:
        """Re-drive the saga of a dead player's step; or why not (``None``: done)."""
        try:
            record = await self.sagas.load(match_id)
        except Exception as exc:
            return f"match {match_id!r} cannot be loaded ({type(exc).__name__})"
        if record.saga.state is not SagaState.STUCK:
            return f"the saga is {record.saga.state.value} now"
        message = messages.match_redrive(match_id, record.seq)
        await self.bus.publish(MATCHES_QUEUE, message)  # one per stall: duplicates dropped
        return None


def _queues(queue: str | None) -> tuple[str, ...]:
    if queue is None:
        return DEAD_LETTER_QUEUES
    if queue not in DEAD_LETTER_QUEUES:
        raise ValueError(f"queue must be one of {', '.join(DEAD_LETTER_QUEUES)}")
    return (queue,)


@dataclass
class StallSweeper(Sweeper):
    """Every ``interval_s``, re-drives sagas unchanged for ``stall_after_s``: a saga whose
    message was dead-lettered, whose scheduled retry was lost, or whose coordinator died
    in a way the bus did not notice. Stuck sagas wait for an operator and are left alone."""

    sagas: SagaLog
    bus: MessageBus
    stall_after_s: float = 300.0
    interval_s: float = 30.0
    batch: int = 1000
    clock: Callable[[], datetime] = utc_now
    redriven: int = 0
    name: ClassVar[str] = "stall sweep"

    async def sweep(self) -> int:
        """One pass; returns how many sagas it re-drove."""
        cutoff = self.clock() - timedelta(seconds=self.stall_after_s)
        count = 0
        for record in await self.sagas.open_sagas(cutoff, self.batch):
            if not is_stalled(record, cutoff):
                continue
            match_id = record.summary.match_id
            with bind(match_id=match_id):
                message = messages.match_resume(match_id, record.seq)
                await self.bus.publish(MATCHES_QUEUE, message)
                log.warning(
                    "match %s: saga %s unchanged since %s; re-driven",
                    match_id,
                    record.saga.state.value,
                    record.summary.updated_at,
                )
            count += 1
        self.redriven += count
        return count
