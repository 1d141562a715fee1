"""The saga execution coordinator: runs a match saga over the ports.

Every step is logged before it acts: the coordinator saves the state a transition returns
(with its events) and only then executes the commands. A crash at any line leaves either
the old state (the step is redone, harmlessly: player steps are idempotent) or the new one
(the commands are re-derived by ``resume``). The summary row's etag is the coordinator's
lease: a second coordinator of the same saga loses its save, reloads and continues from
what the winner wrote.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from app.application.commands import RetryPlayer
from app.application.messages import PLAYER_UPDATES_QUEUE, PlayerRetry
from app.application.ports import (
    CarriedStart,
    MatchSummary,
    MessageBus,
    PayloadArchive,
    PlayerGrains,
    PlayerUpdate,
    SagaFinish,
    SagaLog,
    SagaRecord,
)
from app.application.saga_ratings import log_rerated, with_ratings
from app.application.saga_steps import MAX_LEASE_CONFLICTS, log_step, saga_finish, step_facts
from app.domain import saga as s
from app.domain.aggregation import aggregate
from app.domain.errors import ConcurrencyConflict, NotFound
from app.domain.model import Match, payload_hash_of
from app.domain.ratings import is_rated
from app.domain.retry import RetryPolicy, next_delay
from app.domain.stats import StatDelta
from app.domain.validation import parse_match

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


@dataclass
class SagaCoordinator:
    """Starts, resumes, retries and compensates match sagas."""

    sagas: SagaLog
    archive: PayloadArchive
    grains: PlayerGrains
    bus: MessageBus
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], datetime] = utc_now
    rand: Callable[[], float] = random.random
    # Set when a save of this coordinator finished the saga (the worker's metrics).
    finished: SagaFinish | None = field(default=None, init=False)

    async def run(self, match_id: str, start: CarriedStart | None = None) -> s.SagaState:
        """Start the saga of an accepted match, or resume it from the log.

        ``start``: what the message carried on its first delivery (the record as created
        and the payload): the saga is taken on without reading anything, the match is
        aggregated here, and the first save logs the deltas. Without it (a redelivery, an
        outbox or resume message) the saga and its deltas are loaded; a match whose deltas
        are not logged yet is aggregated from its archived payload.

        An unrated match's start is logged with the first round's results, in one save
        (the deltas with them). A crash before that save leaves the saga accepted, and the
        redelivered message runs the round again (player steps are idempotent). A carried
        record that is stale (another coordinator saved since) loses that save's etag
        check: the lease logic reloads and folds the round into what the other one wrote.
        A rated match logs its deltas before the first round (``_start_rated``)."""
        began = self.clock()
        if start is not None and _startable(start, match_id):
            record, match = start.record, await self._carried_match(start)
        else:
            record, deltas = await self.sagas.load_with_deltas(match_id)
            if record.saga.state is not s.SagaState.ACCEPTED:
                return (await self._execute(record, s.resume(record.saga), deltas)).saga.state
            if deltas:  # stored with deltas (an older version's API aggregated)
                return await self._start(record, deltas, began, stored=True)
            match = await self._archived_match(record.summary)
        deltas = aggregate(match)
        if is_rated(match):
            rated = await with_ratings(self.grains, match, deltas)
            return await self._start_rated(record, rated, began)
        return await self._start(record, deltas, began, stored=False)

    async def _start(
        self, record: SagaRecord, deltas: dict[str, StatDelta], began: datetime, stored: bool
    ) -> s.SagaState:
        """Start a saga whose deltas are the same whenever they are computed (no rating):
        its start is logged with the first round's results (see ``run``)."""
        start_event = s.SagaStarted(record.summary.player_ids)
        # A start commands one thing: apply every player (the state machine decides it).
        (apply,) = s.transition(record.saga, start_event, self.policy).commands
        if not isinstance(apply, s.ApplyPlayers):
            raise TypeError(f"a saga start commands {apply!r}, not ApplyPlayers")
        results = await self.grains.update(
            [PlayerUpdate(s.Action.APPLY, deltas[p]) for p in apply.player_ids]
        )
        record, more = await self._commit(
            record,
            step_facts(results, s.Action.APPLY),
            opening=start_event,
            deltas=None if stored else deltas,
            began_at=began,
        )
        return (await self._execute(record, more, deltas)).saga.state

    async def _start_rated(
        self, record: SagaRecord, deltas: dict[str, StatDelta], began: datetime
    ) -> s.SagaState:
        """Start a rated match's saga: its deltas are logged before any player is updated.

        A rating change depends on the ratings read when it was computed, so computing it
        again (a redelivered start) could give another one; so it is computed once and
        logged first, and every later step (a retry, a resume, a void) applies or reverts
        the logged one. This costs the saga one more save than an unrated start."""
        start_event = s.SagaStarted(record.summary.player_ids)
        step = s.transition(record.saga, start_event, self.policy)
        try:
            saved = await self.sagas.save(
                record, step.saga, step.events, self.clock(), deltas, began
            )
        except ConcurrencyConflict:
            # Another coordinator saved first: go on from what it logged (or rate again,
            # if its save left the saga accepted: nothing was applied from this one).
            return await self.run(record.summary.match_id)
        log_step(record.saga.state, step.saga.state, step.events)
        return (await self._execute(saved, step.commands, deltas)).saga.state

    async def resume(self, match_id: str) -> s.SagaState:
        """Move a saga that stopped moving: pending players now, and players waiting for a
        retry now too (the scheduled retry may be lost); a saga not yet started starts."""
        record = await self.sagas.load(match_id)
        if record.saga.state is s.SagaState.ACCEPTED:
            return await self.run(match_id)
        return (await self._execute(record, s.resume(record.saga, overdue=True))).saga.state

    async def retry(self, retry: RetryPlayer) -> s.SagaState:
        """Run a scheduled retry of one player's step, unless it is stale. A stale one
        still re-sends what the log says is outstanding for the player: a coordinator
        may have logged a newer attempt (or a dead-letter) and died before sending it."""
        record = await self.sagas.load(retry.match_id)
        progress = record.saga.players.get(retry.player_id)
        if progress is None:
            raise NotFound(f"{retry.player_id!r} is not a player of match {retry.match_id!r}")
        if progress.status is not s.PlayerStatus.RETRYING or progress.attempts != retry.attempt:
            log.info(
                "match %s player %s: stale retry %d (now %s, attempt %d)",
                retry.match_id,
                retry.player_id,
                retry.attempt,
                progress.status.value,
                progress.attempts,
            )
            # Sent again under the same message id: the bus drops it if it did go out.
            again = s.outstanding(record.saga, retry.player_id)
            return (await self._execute(record, again)).saga.state
        command: s.Command
        if retry.action is s.Action.COMPENSATE:
            command = s.CompensatePlayers((retry.player_id,))
        else:
            command = s.ApplyPlayers((retry.player_id,))
        return (await self._execute(record, [command])).saga.state

    async def invalidate(self, match_id: str, reason: str) -> s.SagaState:
        """Backward recovery: compensate every player of the match. Asked again (a
        redelivered message after a crash mid-compensation), it resumes the compensation.

        A saga not yet started has no deltas logged (its start logs them): they are
        aggregated from the payload and logged with the compensation's start, so that
        its retries read them as any saga's."""
        record = await self.sagas.load(match_id)
        deltas = unlogged = None
        if record.saga.state is s.SagaState.ACCEPTED:
            deltas = await self.sagas.deltas(match_id)
            if not deltas:
                deltas = unlogged = await self._aggregate(record)
        void = s.CompensationStarted(reason, record.summary.player_ids)
        record, commands = await self._commit(record, [void], deltas=unlogged)
        if not commands:
            commands = list(s.resume(record.saga))
        return (await self._execute(record, commands, deltas)).saga.state

    async def redrive(self, match_id: str) -> s.SagaState:
        """Try the dead players of a stuck saga again from attempt zero (a saga that is not
        stuck, redriven already say, is left as it is)."""
        record = await self.sagas.load(match_id)
        if record.saga.state is not s.SagaState.STUCK:
            return record.saga.state
        record, commands = await self._commit(record, [s.SagaRedriven()])
        return (await self._execute(record, commands)).saga.state

    # ---- mechanics -----------------------------------------------------------------------

    async def _commit(
        self,
        record: SagaRecord,
        facts: Sequence[s.SagaEvent],
        deltas: dict[str, StatDelta] | None = None,
        opening: s.SagaStarted | None = None,
        began_at: datetime | None = None,
    ) -> tuple[SagaRecord, list[s.Command]]:
        """Fold ``facts`` into the saga and save state + events in one guarded write.

        ``opening`` is a start whose commands the caller has already run: logged first,
        its commands not returned, and dropped if another coordinator started the saga.
        On a lost lease the facts are folded again into what the other coordinator saved;
        facts that no longer apply are dropped by the state machine (stale reports)."""
        for _ in range(MAX_LEASE_CONFLICTS):
            saga = before = record.saga
            events: list[s.SagaEvent] = []
            commands: list[s.Command] = []
            if opening is not None and saga.state is s.SagaState.ACCEPTED:
                step = s.transition(saga, opening, self.policy)
                saga, events = step.saga, list(step.events)
            for fact in facts:
                step = s.transition(saga, fact, self.policy)
                saga = step.saga
                events += step.events
                commands += step.commands
            if not events:
                return record, commands
            try:
                saved = await self.sagas.save(record, saga, events, self.clock(), deltas, began_at)
                log_step(before.state, saga.state, events)
                self.finished = saga_finish(record, saved) or self.finished
                return saved, commands
            except ConcurrencyConflict:
                record = await self.sagas.load(record.summary.match_id)
        raise ConcurrencyConflict(f"match {record.summary.match_id}: saga lease kept changing")

    async def _carried_match(self, start: CarriedStart) -> Match:
        """The match a start message carried: its payload, trusted (the API validated it)
        once its hash is the summary's; else (a claim check, or bytes that are not the
        stored payload) the archived payload."""
        payload, summary = start.payload, start.record.summary
        if payload is not None and payload_hash_of(payload) == summary.payload_hash:
            return Match.from_canonical(json.loads(payload))
        if payload is not None:
            log.warning("the payload the message carried is not the stored one: reading it")
        return await self._archived_match(summary)

    async def _archived_match(self, summary: MatchSummary) -> Match:
        payload = await self.archive.get(summary.match_id, summary.payload_hash)
        return parse_match(payload, now=None)

    async def _aggregate(self, record: SagaRecord) -> dict[str, StatDelta]:
        """The match's deltas, aggregated from its archived payload."""
        return aggregate(await self._archived_match(record.summary))

    async def _logged_deltas(self, record: SagaRecord) -> dict[str, StatDelta]:
        """The saga's logged deltas; for a saga that has none (stored without them and
        voided before it started), aggregated from its payload."""
        return await self.sagas.deltas(record.summary.match_id) or await self._aggregate(record)

    async def _execute(
        self,
        record: SagaRecord,
        commands: Sequence[s.Command],
        deltas: dict[str, StatDelta] | None = None,
    ) -> SagaRecord:
        """Run commands until none are left, logging each result before acting on it;
        ``deltas`` are the saga's logged deltas when the caller has them (else read)."""
        todo = list(commands)
        while todo:
            command = todo.pop(0)
            match command:
                case s.ApplyPlayers(player_ids=ids) if ids:
                    deltas = deltas or await self._logged_deltas(record)
                    updates = [PlayerUpdate(s.Action.APPLY, deltas[p]) for p in ids]
                    results = await self.grains.update(updates)
                    # A refused guess is no step of the player's: it stays where it was.
                    wrong = {r.player_id: r.rerate for r in results if r.rerate is not None}
                    done = [r for r in results if r.rerate is None]
                    record, more = await self._commit(record, step_facts(done, s.Action.APPLY))
                    todo += more
                    if wrong:
                        match = await self._archived_match(record.summary)
                        record, deltas, again = await log_rerated(
                            self.sagas, match, record, wrong, self.clock
                        )
                        todo += again
                case s.CompensatePlayers(player_ids=ids) if ids:
                    deltas = deltas or await self._logged_deltas(record)
                    # One at a time, in order: compensations run latest-applied first.
                    for pid in ids:
                        result = await self.grains.update(
                            [PlayerUpdate(s.Action.COMPENSATE, deltas[pid])]
                        )
                        record, more = await self._commit(
                            record, step_facts(result, s.Action.COMPENSATE)
                        )
                        todo += more
                case s.ScheduleRetry(player_id=pid, attempt=attempt, action=action):
                    delay = next_delay(self.policy, attempt, self.rand)
                    retry = PlayerRetry(record.summary.match_id, pid, attempt, action)
                    await self.bus.schedule(PLAYER_UPDATES_QUEUE, retry.to_message(), delay)
                    record, more = await self._commit(
                        record, [s.RetryScheduled(pid, attempt, round(delay, 3))]
                    )
                    todo += more
                case s.DeadLetterPlayer(player_id=pid, reason=reason):
                    progress = record.saga.players[pid]
                    retry = PlayerRetry(
                        record.summary.match_id,
                        pid,
                        progress.attempts,
                        s.Action.APPLY,
                        dead_letter=reason,
                    )
                    await self.bus.publish(PLAYER_UPDATES_QUEUE, retry.to_message())
        return record


def _startable(start: CarriedStart, match_id: str) -> bool:
    """A carried start this coordinator may take on: of this match, not yet started."""
    record = start.record
    return (
        record.summary.match_id == match_id
        and record.saga.state is s.SagaState.ACCEPTED
        and record.seq == 0
    )
