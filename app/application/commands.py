"""The saga commands: what a message asks of a match saga, typed once where it enters
(``app/application/messages.to_command``) and handed to one ``SagaRunner.handle``.

Not the state machine's commands (``app/domain/saga.py``: ``ApplyPlayers``,
``ScheduleRetry``, ...), which a transition returns for the coordinator to execute: these
come from outside, one per coordinator method. Adding a verb is one type here (and in
``SagaCommand``) and one coordinator method; ``LocalSagaRunner.handle`` maps the one to the
other, and mypy names a verb it does not map. They cross Ray to the GameActor by pickle,
hence plain frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.application.ports import CarriedStart
from app.domain.saga import Action


@dataclass(frozen=True, slots=True)
class StartSaga:
    """Start the saga of an accepted match, or resume it from the log (``match.completed``).

    ``start``: what the message carried (the record as created and the payload), given on
    its first delivery only: a later one may follow a save, and the log says what is true."""

    match_id: str
    start: CarriedStart | None = None


@dataclass(frozen=True, slots=True)
class ResumeSaga:
    """Move a saga that stopped moving, overdue retries now (``match.resume``)."""

    match_id: str


@dataclass(frozen=True, slots=True)
class RetryPlayer:
    """Run a scheduled retry of one player's step (a ``player-updates`` message); the
    delta is reloaded from the match partition."""

    match_id: str
    player_id: str
    attempt: int
    action: Action


@dataclass(frozen=True, slots=True)
class VoidMatch:
    """Compensate every player of a match: backward recovery (``match.invalidated``)."""

    match_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class RedriveSaga:
    """Try the dead players of a stuck saga again from attempt zero (``match.redrive``)."""

    match_id: str


SagaCommand = StartSaga | ResumeSaga | RetryPlayer | VoidMatch | RedriveSaga
