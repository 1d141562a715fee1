"""What a saga step's results mean: the events a round of player results is, the finish
the metrics observe when a save ends the saga, and the lines operators read of a step;
and how often a coordinator reloads a saga whose lease another one took."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from app.application.ports import SagaFinish, SagaRecord, UpdateResult
from app.domain import saga as s
from app.domain.codec import event_to_dict
from app.domain.errors import clip_error

# The coordinator's logger: these lines are its steps.
log = logging.getLogger("app.application.sagas")
# Saves a coordinator tries before it gives up on a saga whose lease keeps changing.
MAX_LEASE_CONFLICTS = 10


def saga_finish(before: SagaRecord, saved: SagaRecord) -> SagaFinish | None:
    """What the metrics observe when the save from ``before`` to ``saved`` finished the
    saga (``None`` when it did not): durations from the saved summary's times."""
    if before.saga.state not in s.OPEN_STATES or saved.saga.state in s.OPEN_STATES:
        return None
    summary = saved.summary
    at = summary.updated_at  # the time of the finishing save
    if at is None:
        return None  # an adapter that keeps no times: nothing to measure

    def seconds(since: datetime | None) -> float | None:
        # Clocks of different machines may disagree by a little: never below zero.
        return None if since is None else max((at - since).total_seconds(), 0.0)

    # Time to consistency is the first finish's, as GET /v1/matches/{id} reports it.
    first = before.summary.finished_at is None
    return SagaFinish(
        saved.saga.state.value,
        seconds(summary.began_at),
        seconds(summary.accepted_at) if first else None,
    )


def step_facts(results: Sequence[UpdateResult], action: s.Action) -> list[s.SagaEvent]:
    """The events a round of player results is: failed, applied (or found applied),
    compensated (or found compensated)."""
    facts: list[s.SagaEvent] = []
    for r in results:
        if not r.ok:
            error = clip_error(r.error or "unknown error")
            facts.append(s.PlayerFailed(r.player_id, error, r.transient))
        elif action is s.Action.APPLY:
            facts.append(s.PlayerApplied(r.player_id, already=not r.changed))
        else:
            facts.append(s.PlayerCompensated(r.player_id, reverted=r.changed))
    return facts


def log_step(before: s.SagaState, after: s.SagaState, events: Sequence[s.SagaEvent]) -> None:
    """What a saved step did, for operators: state changes and failures; every event at
    DEBUG. The match id is not in the text: it is bound to every line of the saga."""
    for event in events:
        log.debug("saga event %s", type(event).__name__, extra={"event": event_to_dict(event)})
        match event:
            case s.PlayerFailed(player_id=pid, error=error, transient=transient):
                kind = "transient" if transient else "permanent"
                log.info("player %s failed (%s): %s", pid, kind, error, extra={"player_id": pid})
            case s.PlayerDeadLettered(player_id=pid, reason=reason):
                log.warning("player %s dead-lettered: %s", pid, reason, extra={"player_id": pid})
    if after is not before:
        level = logging.WARNING if after is s.SagaState.STUCK else logging.INFO
        log.log(level, "saga %s -> %s", before.value, after.value, extra={"state": after.value})
