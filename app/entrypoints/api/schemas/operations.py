"""Answers to operators (sagas, dead letters, pools) and the health probes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.domain.saga import SagaState


class SagaLine(BaseModel):
    """One saga as operators list them."""

    match_id: str
    state: SagaState
    accepted_at: str
    updated_at: str | None
    finished_at: str | None
    published: bool = Field(
        description="Its start message was delivered (the saga started) or published again "
        "by the outbox sweeper; the API's own publish is not recorded."
    )
    players: dict[str, int] = Field(description="How many players are in each status.")
    dead: list[str] = Field(description="Players whose update was dead-lettered.")


class SagaList(BaseModel):
    """Sagas, oldest first."""

    sagas: list[SagaLine]


class Requested(BaseModel):
    """What was asked of the saga (``null``: nothing needed doing)."""

    match_id: str
    state: SagaState
    requested: str | None


class DeadLetter(BaseModel):
    """A dead letter, with why it died and what it was about."""

    queue: str
    message_id: str
    subject: str
    reason: str | None
    description: str | None
    match_id: str | None
    player_id: str | None
    body: dict[str, Any]


class DeadLetters(BaseModel):
    """Dead letters, oldest first."""

    deadletters: list[DeadLetter]


class ReplayReport(BaseModel):
    """What a replay did with each dead letter it took."""

    replayed: list[dict[str, Any]]
    dropped: list[dict[str, Any]]


class PoolsOut(BaseModel):
    """The actor pools: placement version, sizes, each member's counters and node."""

    model_config = ConfigDict(extra="allow")
    version: int
    updated_at: str
    configured: dict[str, int | None]
    pools: dict[str, Any]
    last_resize: dict[str, Any] | None


class Alive(BaseModel):
    """The process serves HTTP."""

    status: Literal["ok"]


class Readiness(BaseModel):
    """Each dependency's state: ``ok`` or what is wrong with it."""

    ready: bool
    checks: dict[str, str] = Field(examples=[{"storage": "ok", "bus": "ok", "ray": "ok"}])
