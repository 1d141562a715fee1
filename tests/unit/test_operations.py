"""Operator tools and the stall sweeper, over in-memory adapters and in-process grains."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.application.commands import VoidMatch
from app.application.messages import MATCHES_QUEUE, PLAYER_UPDATES_QUEUE
from app.application.operations import Operations, StallSweeper, replay_id
from app.application.ports import BusMessage
from app.application.sagas import utc_now
from app.domain.errors import Conflict, NotFound
from app.domain.retry import RetryPolicy
from app.domain.saga import CompensationStarted, SagaState, transition
from storage.memory_bus import InMemoryMessageBus
from tests.unit.test_coordinator import FAST, Stack, assert_exact, drain, matches, stack


def ops(s: Stack) -> Operations:
    return Operations(s.sagas, s.bus)


async def stuck_saga(players: int, seed: int) -> tuple[Stack, list[dict], str, str]:
    """One match whose first player's update always fails, run until the saga is stuck;
    returns the stack, the posted matches, the broken player and the match id."""
    posted = matches(1, players=players, seed=seed)
    broken = posted[0]["players"][0]["player_id"]
    s = stack(permanent={broken})
    await s.service.submit_match(posted[0])
    mid = posted[0]["match_id"]
    assert await drain(s, [mid]) == {mid: "stuck"}
    return s, posted, broken, mid


async def test_a_stuck_saga_is_listed_replayed_after_the_fix_and_completes_exactly() -> None:
    s, posted, broken, mid = await stuck_saga(players=4, seed=11)
    stuck = await ops(s).list_sagas(SagaState.STUCK, 10)
    assert [(v["match_id"], v["dead"]) for v in stuck] == [(mid, [broken])]
    letters = await ops(s).dead_letters(None, 10)
    assert [(d["queue"], d["match_id"], d["player_id"]) for d in letters] == [
        (PLAYER_UPDATES_QUEUE, mid, broken)
    ]
    assert letters[0]["reason"] == "PlayerStepFailed" and "broken" in letters[0]["description"]
    s.store.permanent.clear()  # the operator fixed the cause
    report = await ops(s).replay(None)
    assert [r["match_id"] for r in report.replayed] == [mid] and report.dropped == []
    assert await ops(s).dead_letters(None, 10) == []
    assert await drain(s, [mid], until={mid: "completed"}) == {mid: "completed"}
    await assert_exact(s, posted)
    assert mid in {v["match_id"] for v in await ops(s).list_sagas(SagaState.COMPLETED, 10)}


async def test_replay_drops_a_dead_letter_whose_saga_moved_on() -> None:
    s, posted, _, mid = await stuck_saga(players=3, seed=12)
    s.store.permanent.clear()
    await ops(s).redrive(mid)  # fixed by a re-drive first
    assert await drain(s, [mid], until={mid: "completed"}) == {mid: "completed"}
    report = await ops(s).replay(PLAYER_UPDATES_QUEUE)
    assert report.replayed == [] and [d["match_id"] for d in report.dropped] == [mid]
    assert "completed" in report.dropped[0]["why"]
    await assert_exact(s, posted)


async def test_replay_of_chosen_ids_leaves_the_others() -> None:
    s = stack()
    dlq = f"{MATCHES_QUEUE}/$deadletterqueue"
    for n in range(3):
        await s.bus.publish(MATCHES_QUEUE, BusMessage(f"x{n}", {"match_id": f"gone-{n}"}))
    for received in await s.bus.receive(MATCHES_QUEUE, 10, 1.0):
        await s.bus.dead_letter(received, "Test", "parked")
    report = await ops(s).replay(MATCHES_QUEUE, ["x1"])
    assert [r["message_id"] for r in report.replayed] == ["x1"]
    assert [m.message_id for m in await s.bus.peek(dlq, 10)] == ["x0", "x2"]
    again = await s.bus.receive(MATCHES_QUEUE, 10, 1.0)
    assert [r.message.message_id.split(":replay:")[0] for r in again] == ["x1"]


async def test_redrive_refuses_finished_and_unknown_matches() -> None:
    posted = matches(1, seed=13)
    s = stack()
    await s.service.submit_match(posted[0])
    await drain(s, [posted[0]["match_id"]])
    with pytest.raises(Conflict, match="completed"):
        await ops(s).redrive(posted[0]["match_id"])
    with pytest.raises(NotFound):
        await ops(s).redrive("no-such-match")
    with pytest.raises(NotFound):
        await ops(s).invalidate("no-such-match", "")


class LosingBus(InMemoryMessageBus):
    """Loses every scheduled message (a retry that never comes)."""

    lose = True

    async def schedule(self, queue: str, message: BusMessage, delay_s: float) -> int:
        if self.lose:
            return 0
        return await super().schedule(queue, message, delay_s)


async def test_the_stall_sweeper_moves_a_saga_whose_retry_was_lost() -> None:
    posted = matches(1, players=4, seed=14)
    victim = posted[0]["players"][0]["player_id"]
    s = stack(transient={victim: 3})  # more than the in-process retries cover
    s.bus = s.service.bus = LosingBus()
    mid = posted[0]["match_id"]
    await s.service.submit_match(posted[0])
    await drain(s, [mid], timeout_s=1.0)
    assert (await s.sagas.load(mid)).saga.state is SagaState.RECOVERING
    fresh = StallSweeper(s.sagas, s.bus, stall_after_s=60)
    assert await fresh.sweep() == 0  # not stalled yet: it just changed
    later = StallSweeper(
        s.sagas, s.bus, stall_after_s=60, clock=lambda: utc_now() + timedelta(hours=1)
    )
    assert await later.sweep() == 1
    assert await later.sweep() == 1  # the same stall again: the same message id ...
    assert s.bus.depth(MATCHES_QUEUE) == 1  # ... dropped by duplicate detection
    s.bus.lose = False
    assert await drain(s, [mid]) == {mid: "completed"}
    await assert_exact(s, posted)
    kinds = [type(e.event).__name__ for e in await s.sagas.log(mid)]
    assert kinds.count("SagaCompleted") == 1


async def test_the_stall_sweeper_leaves_stuck_sagas_to_the_operators() -> None:
    s, _, _, _ = await stuck_saga(players=3, seed=15)
    later = StallSweeper(s.sagas, s.bus, clock=lambda: utc_now() + timedelta(hours=1))
    assert await later.sweep() == 0


async def test_invalidate_through_the_bus_compensates_once() -> None:
    posted = matches(3, players=4, seed=16)
    s = stack()
    for m in posted:
        await s.service.submit_match(m)
    ids = [m["match_id"] for m in posted]
    await drain(s, ids)
    answer = await ops(s).invalidate(ids[0], "cheating")
    assert answer["requested"] == "match.invalidated"
    want = {ids[0]: "compensated", ids[1]: "completed", ids[2]: "completed"}
    assert await drain(s, ids, until=want) == want
    await assert_exact(s, posted[1:])
    assert (await ops(s).invalidate(ids[0], "again"))["requested"] is None
    kinds = [type(e.event).__name__ for e in await s.sagas.log(ids[0])]
    assert kinds[-1] == "SagaCompensated" and kinds.count("CompensationStarted") == 1


async def test_invalidate_while_a_retry_is_pending_makes_the_late_retry_a_no_op() -> None:
    posted = matches(2, players=4, seed=17)
    victim = posted[0]["players"][0]["player_id"]
    # The durable retry comes 1 s later: well after the compensation is done.
    s = stack(RetryPolicy(base_s=1.0, cap_s=1.0, max_attempts=4, jitter=0), transient={victim: 3})
    mid = posted[0]["match_id"]
    for m in posted:
        await s.service.submit_match(m)
    await drain(s, [mid], until={mid: "recovering"})
    await ops(s).invalidate(mid, "voided")
    want = {mid: "compensated", posted[1]["match_id"]: "completed"}
    assert await drain(s, list(want), until=want) == want
    calls = s.store.calls[victim]
    s.store.transient.clear()
    # The retry still arrives; it finds the player voided and changes nothing.
    await drain(s, [mid], timeout_s=1.5, until={mid: "never"})
    assert s.bus.depth(PLAYER_UPDATES_QUEUE) == 0  # it was delivered and settled
    assert s.store.calls[victim] == calls
    await assert_exact(s, posted[1:])
    assert (await s.sagas.load(mid)).saga.state is SagaState.COMPENSATED


async def test_an_invalidation_redelivered_after_a_crash_finishes_the_compensation() -> None:
    posted = matches(2, players=4, seed=18)
    s = stack()
    for m in posted:
        await s.service.submit_match(m)
    mid = posted[0]["match_id"]
    await drain(s, [m["match_id"] for m in posted])
    # The coordinator saved CompensationStarted, then died before reverting anyone.
    record = await s.sagas.load(mid)
    step = transition(record.saga, CompensationStarted("voided"), FAST)
    await s.sagas.save(record, step.saga, step.events, utc_now())
    reply = await s.runner.handle(VoidMatch(mid, "voided"))  # the redelivered message
    assert reply.state == "compensated"
    await assert_exact(s, posted[1:])


def test_a_message_replayed_again_and_again_keeps_a_bounded_id() -> None:
    original = "m-" + "x" * 60 + ":start"
    message_id = original
    for _ in range(20):
        message_id = replay_id(message_id)
    assert message_id.startswith(original + ":replay:") and len(message_id) <= 128
    assert replay_id(message_id) != message_id
