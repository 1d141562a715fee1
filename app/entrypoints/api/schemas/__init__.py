"""The API's documented shapes: the match a client posts, and every answer and error.

The match model documents the body only: ``app.domain.validation`` stays the one judge of
a posted match (it reports every problem at once and also re-reads archived payloads); its
bounds are imported from there, so the schema cannot drift from the rules. One module per
kind of answer; every shape is importable from here."""

from app.entrypoints.api.schemas.fields import Id, IdPath, Moment
from app.entrypoints.api.schemas.matches import (
    Accepted,
    LogEntryOut,
    MatchDetail,
    PlayerLineOut,
    TeamOut,
)
from app.entrypoints.api.schemas.operations import (
    Alive,
    DeadLetter,
    DeadLetters,
    PoolsOut,
    Readiness,
    ReplayReport,
    Requested,
    SagaLine,
    SagaList,
)
from app.entrypoints.api.schemas.players import (
    Counts,
    HistoryLine,
    HistoryPageOut,
    ModeHead,
    ModeRecordOut,
    ModeTotals,
    PlayerHead,
    RatingChangeOut,
    RatingOut,
    Ratios,
    ServiceRecordOut,
    StandingOut,
    Totals,
)
from app.entrypoints.api.schemas.posted import EventIn, MatchIn, PlayerIn, WeaponIn
from app.entrypoints.api.schemas.problems import (
    CONDITIONAL,
    Duplicate,
    FieldProblem,
    Invalid,
    Problem,
    errors,
)

__all__ = [
    "CONDITIONAL",
    "Accepted",
    "Alive",
    "Counts",
    "DeadLetter",
    "DeadLetters",
    "Duplicate",
    "EventIn",
    "FieldProblem",
    "HistoryLine",
    "HistoryPageOut",
    "Id",
    "IdPath",
    "Invalid",
    "LogEntryOut",
    "MatchDetail",
    "MatchIn",
    "ModeHead",
    "ModeRecordOut",
    "ModeTotals",
    "Moment",
    "PlayerHead",
    "PlayerIn",
    "PlayerLineOut",
    "PoolsOut",
    "Problem",
    "RatingChangeOut",
    "RatingOut",
    "Ratios",
    "Readiness",
    "ReplayReport",
    "Requested",
    "SagaLine",
    "SagaList",
    "ServiceRecordOut",
    "StandingOut",
    "TeamOut",
    "Totals",
    "WeaponIn",
    "errors",
]
