"""Every line logged while a saga runs names its match: the runner, the coordinator and
the player grains over in-memory adapters, in this process (as in a GameActor)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from app.application.commands import RetryPlayer, StartSaga
from app.application.messages import log_fields
from app.application.ports import BusMessage
from app.domain.saga import Action
from app.observability.logs import ContextFilter
from tests.support.matches import one_sided
from tests.unit.test_coordinator import drain, matches, stack


class Captured(logging.Handler):
    """Keeps every record, with the bound context stamped on as a real handler would."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(ContextFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def ours(self) -> list[logging.LogRecord]:
        """Records of statsaga's own loggers (not asyncio's, say)."""
        return [r for r in self.records if r.name.split(".")[0] in {"app", "actors", "storage"}]


@pytest.fixture
def captured() -> Iterator[Captured]:
    root = logging.getLogger()
    handler, level = Captured(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_every_line_of_concurrent_sagas_carries_its_own_match(captured: Captured) -> None:
    # Apart, and one team each: unrated, so each start is saved with its first round.
    posted = [one_sided(m) for m in matches(1, players=4, seed=21) + matches(1, players=4, seed=22)]
    broken = posted[0]["players"][0]["player_id"]
    s = stack(permanent={broken})  # failure and dead-letter lines as well
    for m in posted:
        await s.service.submit_match(m)
    captured.records.clear()  # from here on, only the sagas run
    ids = [m["match_id"] for m in posted]
    replies = await asyncio.gather(*(s.runner.handle(StartSaga(mid)) for mid in ids))
    assert [r.state for r in replies] == ["stuck", "completed"]

    lines = captured.ours()
    sagas = [r for r in lines if r.name == "app.application.sagas"]
    grains = [r for r in lines if r.name == "actors.grains"]
    assert sagas and grains, [r.name for r in lines]  # the sagas did log, on both sides
    assert [r for r in lines if getattr(r, "match_id", None) not in ids] == []
    changes = {
        mid: [r.getMessage() for r in sagas if r.match_id == mid and "->" in r.msg]  # type: ignore[attr-defined]
        for mid in ids
    }
    # The start is saved with the first round: one change when that round settles it.
    assert changes == {ids[0]: ["saga accepted -> stuck"], ids[1]: ["saga accepted -> completed"]}
    failures = [r for r in lines if r.levelno >= logging.INFO and "->" not in r.msg]
    assert failures  # the grain's error, the failed step, the dead letter
    assert {(r.match_id, r.player_id) for r in failures} == {(ids[0], broken)}  # type: ignore[attr-defined]
    # A player's turn names the player as well.
    assert all(getattr(r, "player_id", None) for r in grains)


async def test_a_player_retry_carries_the_player(captured: Captured) -> None:
    posted = matches(1, players=3, seed=22)
    s = stack()
    await s.service.submit_match(posted[0])
    mid = posted[0]["match_id"]
    await s.runner.handle(StartSaga(mid))
    victim = posted[0]["players"][0]["player_id"]
    captured.records.clear()
    stale = RetryPlayer(mid, victim, 1, Action.APPLY)
    await s.runner.handle(stale)  # stale: the player is applied already
    lines = captured.ours()
    assert lines, "a stale retry is logged"
    assert {(r.match_id, r.player_id) for r in lines} == {(mid, victim)}  # type: ignore[attr-defined]


async def test_the_worker_adds_the_message_id(captured: Captured) -> None:
    posted = matches(1, players=3, seed=23)
    s = stack()
    await s.service.submit_match(posted[0])
    mid = posted[0]["match_id"]
    captured.records.clear()
    assert await drain(s, [mid]) == {mid: "completed"}
    sagas = [r for r in captured.ours() if r.name == "app.application.sagas"]
    assert sagas
    # The saga's message is the match's own (its id is the match id: duplicates drop).
    assert {(r.message_id, r.match_id) for r in sagas} == {(mid, mid)}  # type: ignore[attr-defined]


def test_message_fields_come_from_the_body() -> None:
    retry = BusMessage("m-1:p-1:apply:2", {"match_id": "m-1", "player_id": "p-1", "attempt": 2})
    assert log_fields(retry) == {
        "message_id": "m-1:p-1:apply:2",
        "match_id": "m-1",
        "player_id": "p-1",
    }
    malformed = BusMessage("x", {"match_id": 7})
    assert log_fields(malformed) == {"message_id": "x", "match_id": "7", "player_id": None}
