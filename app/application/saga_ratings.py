"""What a rated match adds to its saga: the players' ratings read and the match rated
before the fan-out, and a player whose guessed rating was not theirs rated again
(docs/architecture.md, "Rated matches")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from app.application.ports import PlayerGrains, SagaLog, SagaRecord
from app.application.saga_steps import MAX_LEASE_CONFLICTS, log
from app.domain import saga as s
from app.domain.errors import ConcurrencyConflict
from app.domain.model import Match
from app.domain.ratings import SkillRating, rate_match, rerate
from app.domain.stats import StatDelta


async def with_ratings(
    grains: PlayerGrains, match: Match, deltas: dict[str, StatDelta]
) -> dict[str, StatDelta]:
    """``deltas`` with each player's rating change, from the ratings their grains hold
    now; a player whose grain could not be read is not rated in this match (the rule of
    ``ratings.rate_match``). A player their shard guessed is new (not read) is rated from
    the default rating, the change marked ``guessed``: their grain applies it only if
    they have no rating in the mode, and otherwise refuses it (``log_rerated``)."""
    ids = [line.player_id for line in match.players]
    read = await grains.ratings(match.mode, ids)
    unreadable = [pid for pid in ids if pid not in read]
    if unreadable:
        log.warning("players %s not rated: their ratings could not be read", unreadable)
    current = {pid: r.rating for pid, r in read.items()}
    guessed = [pid for pid, r in read.items() if r.guessed]
    changes = rate_match(match, current, unreadable, guessed)
    return {pid: replace(d, rating=changes.get(pid)) for pid, d in deltas.items()}


async def log_rerated(
    sagas: SagaLog,
    match: Match,
    record: SagaRecord,
    wrong: dict[str, SkillRating],
    clock: Callable[[], datetime],
) -> tuple[SagaRecord, dict[str, StatDelta], list[s.Command]]:
    """Players of ``match`` whose grains refused a change computed from a guessed rating
    (they were not new; ``wrong`` holds the ratings the grains answered): each is rated
    again from it (``ratings.rerate``) and the change is logged, to be applied only then,
    as every rating change is. The summary's etag is the lease: a coordinator that loses
    the save reloads, and a change another one logged meanwhile (no longer guessed) is
    kept, not computed again. Returns the record, the logged deltas and the command that
    applies those players (none if the saga stopped applying meanwhile)."""
    match_id = record.summary.match_id
    deltas = await sagas.deltas(match_id)
    for _ in range(MAX_LEASE_CONFLICTS):
        still = {p: r for p, r in wrong.items() if _guessed(deltas[p])}
        if still:
            logged = {pid: d.rating for pid, d in deltas.items()}
            changes = {pid: rerate(match, logged, pid, r) for pid, r in still.items()}
            corrected = {**deltas, **{p: replace(deltas[p], rating=changes[p]) for p in still}}
            try:
                record = await sagas.save(record, record.saga, (), clock(), corrected)
            except ConcurrencyConflict:
                record, deltas = await sagas.load_with_deltas(match_id)
                continue
            deltas = corrected
            log.warning("players %s rated again: their shards guessed they were new", sorted(still))
        if record.saga.state not in (s.SagaState.RUNNING, s.SagaState.RECOVERING):
            return record, deltas, []  # voided meanwhile: the compensation takes over
        waiting = (s.PlayerStatus.PENDING, s.PlayerStatus.RETRYING)
        again = tuple(p for p in wrong if record.saga.players[p].status in waiting)
        return record, deltas, [s.ApplyPlayers(again)] if again else []
    raise ConcurrencyConflict(f"match {match_id}: saga lease kept changing")


def _guessed(delta: StatDelta) -> bool:
    """Whether ``delta``'s rating change was computed from a guessed rating."""
    return delta.rating is not None and delta.rating.guessed
