"""The coalescer: concurrent callers' batches for one member go in one call, each caller
answered with its own part; no wait when the member is idle; the caps hold."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from actors.coalescer import Coalescer


@dataclass
class FakeMember:
    """A call that records what it carried and waits for the test to let it answer.
    Items are strings; results are the items with ``!`` appended, or ``answers[n]`` for
    the n-th call when the test set one."""

    gates: list[asyncio.Event] = field(default_factory=list)
    calls: list[tuple[int, list[str], int]] = field(default_factory=list)
    answers: dict[int, object] = field(default_factory=dict)
    running: int = 0
    peak: int = 0
    held: bool = True

    async def call(self, member: int, items: list[str], route: int) -> list[str] | object:
        n = len(self.calls)
        self.calls.append((member, list(items), route))
        gate = asyncio.Event()
        if not self.held:
            gate.set()
        self.gates.append(gate)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await gate.wait()
        finally:
            self.running -= 1
        answer = self.answers.get(n)
        if isinstance(answer, Exception):
            raise answer
        return answer if answer is not None else [f"{i}!" for i in items]

    def release(self, n: int | None = None) -> None:
        for gate in self.gates if n is None else [self.gates[n]]:
            gate.set()


async def settle() -> None:
    """Let every ready task run (no timers involved)."""
    for _ in range(5):
        await asyncio.sleep(0)


def carried(member: FakeMember) -> list[list[str]]:
    return [items for _, items, _ in member.calls]


async def test_an_idle_member_is_called_at_once() -> None:
    member = FakeMember(held=False)
    coalescer: Coalescer[str, str, object, int] = Coalescer(member.call, in_flight=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await coalescer.send(0, ["a"], 1) == ["a!"]
    # No timer: the call went within a few loop turns, not after a flush interval.
    assert loop.time() - started < 0.005
    assert carried(member) == [["a"]]


async def test_callers_queued_behind_a_call_share_the_next_and_get_their_own_results() -> None:
    member = FakeMember()
    coalescer: Coalescer[str, str, object, int] = Coalescer(member.call, in_flight=1)
    first = asyncio.create_task(coalescer.send(0, ["a1", "a2"], 1))
    await settle()
    assert carried(member) == [["a1", "a2"]]
    others = [asyncio.create_task(coalescer.send(0, [f"{c}1", f"{c}2"], 1)) for c in "bcd"]
    await settle()
    assert len(member.calls) == 1  # queued while the first runs
    member.release(0)
    await settle()
    assert carried(member) == [["a1", "a2"], ["b1", "b2", "c1", "c2", "d1", "d2"]]
    member.release()
    assert await first == ["a1!", "a2!"]
    assert [await t for t in others] == [["b1!", "b2!"], ["c1!", "c2!"], ["d1!", "d2!"]]
    assert (coalescer.counters.calls, coalescer.counters.batches) == (2, 4)
    assert coalescer.counters.items == 8


async def test_members_are_coalesced_apart() -> None:
    member = FakeMember(held=False)
    coalescer: Coalescer[str, str, object, int] = Coalescer(member.call, in_flight=1)
    answers = await asyncio.gather(*(coalescer.send(m % 2, [f"x{m}"], 1) for m in range(6)))
    assert answers == [[f"x{m}!"] for m in range(6)]
    # Each member: the first at once, the rest together.
    assert sorted((m, items) for m, items, _ in member.calls) == [
        (0, ["x0"]),
        (0, ["x2", "x4"]),
        (1, ["x1"]),
        (1, ["x3", "x5"]),
    ]


@pytest.mark.parametrize("in_flight", [1, 2, 3])
async def test_no_more_calls_in_flight_per_member_than_the_cap(in_flight: int) -> None:
    member = FakeMember()
    coalescer: Coalescer[str, str, object, int] = Coalescer(member.call, in_flight=in_flight)
    sends = [asyncio.create_task(coalescer.send(0, [f"i{n}"], 1)) for n in range(10)]
    await settle()
    # The first callers each go at once, up to the cap; the others wait for a slot.
    assert carried(member) == [[f"i{n}"] for n in range(in_flight)]
    member.release(0)
    await settle()
    assert carried(member)[in_flight] == [f"i{n}" for n in range(in_flight, 10)]
    member.release()
    assert [await s for s in sends] == [[f"i{n}!"] for n in range(10)]
    assert member.peak == in_flight


async def test_a_call_carries_at_most_max_batch_items_and_never_splits_a_batch() -> None:
    member = FakeMember()
    coalescer: Coalescer[str, str, object, int] = Coalescer(member.call, in_flight=1, max_batch=5)
    first = asyncio.create_task(coalescer.send(0, ["a"], 1))
    await settle()
    member.held = False
    sizes = [3, 2, 2, 7, 1]  # the 7 is over the cap: it goes alone, whole
    sends = [
        asyncio.create_task(coalescer.send(0, [f"b{n}-{k}" for k in range(size)], 1))
        for n, size in enumerate(sizes)
    ]
    await settle()
    member.release(0)
    answers = [await s for s in sends]
    await first
    assert [len(items) for items in carried(member)] == [1, 5, 2, 7, 1]
    assert [len(a) for a in answers] == sizes
    assert all(r.endswith("!") for a in answers for r in a)  # type: ignore[union-attr]


async def test_an_answer_without_results_reaches_every_caller_of_that_call_only() -> None:
    member = FakeMember(answers={1: "Moved"})
    coalescer: Coalescer[str, str, object, int] = Coalescer(member.call, in_flight=1)
    first = asyncio.create_task(coalescer.send(0, ["a"], 1))
    await settle()
    moved = [asyncio.create_task(coalescer.send(0, [f"m{n}"], 1)) for n in range(3)]
    await settle()
    member.release(0)
    await settle()
    later = asyncio.create_task(coalescer.send(0, ["z"], 1))  # after that call went
    await settle()
    member.release()
    await settle()
    member.release()
    assert await first == ["a!"]
    assert [await t for t in moved] == ["Moved"] * 3
    assert await later == ["z!"]


async def test_a_call_that_raises_fails_every_caller_of_that_call() -> None:
    member = FakeMember(answers={1: RuntimeError("pickling failed")})
    coalescer: Coalescer[str, str, object, int] = Coalescer(member.call, in_flight=1)
    first = asyncio.create_task(coalescer.send(0, ["a"], 1))
    await settle()
    failing = [asyncio.create_task(coalescer.send(0, [f"f{n}"], 1)) for n in range(2)]
    await settle()
    member.release()
    await settle()
    member.release()
    assert await first == ["a!"]
    for task in failing:
        with pytest.raises(RuntimeError, match="pickling failed"):
            await task
    # The member's slot was freed: it is called again.
    member.held = False
    assert await coalescer.send(0, ["b"], 1) == ["b!"]


async def test_batches_routed_by_different_placements_never_share_a_call() -> None:
    # A caller on a stale placement must not make the others' call answer Moved.
    member = FakeMember()
    coalescer: Coalescer[str, str, object, int] = Coalescer(member.call, in_flight=1)
    first = asyncio.create_task(coalescer.send(0, ["a"], 1))
    await settle()
    sends = [
        asyncio.create_task(coalescer.send(0, [name], route))
        for name, route in [("old1", 1), ("new1", 2), ("old2", 1), ("new2", 2)]
    ]
    await settle()
    for n in range(3):
        member.release(n)
        await settle()
    assert [(items, route) for _, items, route in member.calls] == [
        (["a"], 1),
        (["old1", "old2"], 1),
        (["new1", "new2"], 2),
    ]
    assert [await s for s in sends] == [["old1!"], ["new1!"], ["old2!"], ["new2!"]]
    await first


async def test_equal_items_of_two_callers_each_get_their_own_answer() -> None:
    # A retry racing the run it retries: the same (player, match) twice in one call.
    async def call(member: int, items: list[str], route: int) -> list[str]:
        await asyncio.sleep(0)
        return [f"{item}#{n}" for n, item in enumerate(items)]  # tells the positions apart

    coalescer: Coalescer[str, str, object, int] = Coalescer(call, in_flight=1)
    first = asyncio.create_task(coalescer.send(0, ["first"], 1))
    await asyncio.sleep(0)
    both = [asyncio.create_task(coalescer.send(0, ["same"], 1)) for _ in range(2)]
    assert await first == ["first#0"]
    assert [await t for t in both] == [["same#0"], ["same#1"]]


async def test_callers_that_give_up_neither_stall_nor_ride_along() -> None:
    member = FakeMember()
    coalescer: Coalescer[str, str, object, int] = Coalescer(member.call, in_flight=1)
    first = asyncio.create_task(coalescer.send(0, ["a"], 1))
    await settle()
    quitter = asyncio.create_task(coalescer.send(0, ["q"], 1))
    stayer = asyncio.create_task(coalescer.send(0, ["s"], 1))
    await settle()
    quitter.cancel()
    first.cancel()  # its call is in flight: the call goes on, the others are not held
    await settle()
    member.release(0)
    await settle()
    member.release()
    assert await stayer == ["s!"]
    assert carried(member) == [["a"], ["s"]]  # the one that gave up while queued: dropped
    for task in (quitter, first):
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_wrong_number_of_results_is_an_error_not_a_misattribution() -> None:
    async def call(member: int, items: list[str], route: int) -> list[str]:
        return ["only one"]

    coalescer: Coalescer[str, str, object, int] = Coalescer(call)
    with pytest.raises(RuntimeError, match="1 results for 2 items"):
        await coalescer.send(0, ["a", "b"], 1)
