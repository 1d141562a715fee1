"""Many callers' batches for one pool member, sent in as few calls as possible.

A GameActor runs dozens of sagas at once, and each fans its players out to the same one
or two shards: one Ray call per saga round each (~1.2 ms of CPU, both sides, whatever it
carries). ``Coalescer`` keeps at most ``in_flight`` calls per member going; what callers
send meanwhile queues and goes out together in the next call, each caller answered with
its own part. An idle member is called at once (no timer): group commit, as the grains
do per player.

No Ray here (the call is a parameter), so it is tested with plain asyncio."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
Other = TypeVar("Other")
Route = TypeVar("Route", bound=Hashable)

# Two calls per member: while one runs there, the other's answer travels back and the
# next is pickled, so the member is not left idle for a round trip between calls; a
# third would only split the queue into smaller calls (each paying the fixed cost).
IN_FLIGHT = 2
# Updates per call at most: ~170 B pickled each (a 16-player batch is 2.7 KB), so a full
# call stays well under the 100 KiB that Ray passes inline (larger goes through the
# object store, a dearer path).
MAX_BATCH = 256


@dataclass(slots=True)
class _Entry(Generic[Item, Route]):
    """One caller's batch, the route it was computed by, and where its answer goes."""

    items: list[Item]
    route: Route
    answer: asyncio.Future[Any]


@dataclass(slots=True)
class _Lane(Generic[Item, Route]):
    """One member's queue and how many calls to it are running."""

    queue: deque[_Entry[Item, Route]] = field(default_factory=deque)
    running: int = 0


@dataclass
class CoalescerCounters:
    """What the coalescing saves: ``batches`` sent by callers in ``calls`` calls."""

    calls: int = 0
    batches: int = 0
    items: int = 0


class Coalescer(Generic[Item, Result, Other, Route]):
    """Sends ``call(member, items, route)`` for many callers at once.

    ``call`` answers either a list with one result per item, in order (each caller gets
    the slice of its own items: two callers' equal items each get theirs), or anything
    else (``Moved``, an error marker), which every caller of that call gets as it is.
    Only batches computed under the same route (placement) share a call: a caller on a
    stale placement must not make the others' call answer ``Moved``.
    """

    def __init__(
        self,
        call: Callable[[int, list[Item], Route], Awaitable[list[Result] | Other]],
        in_flight: int = IN_FLIGHT,
        max_batch: int = MAX_BATCH,
    ) -> None:
        if in_flight < 1 or max_batch < 1:
            raise ValueError("in_flight and max_batch must be at least 1")
        self._call = call
        self._in_flight = in_flight
        self._max_batch = max_batch
        self._lanes: dict[int, _Lane[Item, Route]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # asyncio keeps only weak references
        self.counters = CoalescerCounters()

    async def send(self, member: int, items: list[Item], route: Route) -> list[Result] | Other:
        """What ``call`` answered for these items: their own results, or the call's
        answer (``Moved``, an error marker) when it gave none."""
        lane = self._lanes.setdefault(member, _Lane())
        entry = _Entry(items, route, asyncio.get_running_loop().create_future())
        lane.queue.append(entry)
        self._pump(member, lane)
        # A caller that gives up does not stop the call: the others wait for it.
        answer: list[Result] | Other = await entry.answer
        return answer

    def _pump(self, member: int, lane: _Lane[Item, Route]) -> None:
        """Start calls while the member has a free slot and something is queued."""
        while lane.running < self._in_flight and lane.queue:
            batch = self._take(lane)
            if not batch:
                continue  # only callers that gave up were queued
            lane.running += 1
            task = asyncio.get_running_loop().create_task(self._run(member, lane, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take(self, lane: _Lane[Item, Route]) -> list[_Entry[Item, Route]]:
        """The oldest queued batches of the oldest one's route, ``max_batch`` items at
        most (an oversized first batch goes alone: it is never split). Callers that gave
        up before their batch went are dropped."""
        route = lane.queue[0].route
        taken: list[_Entry[Item, Route]] = []
        left: deque[_Entry[Item, Route]] = deque()
        size = 0
        while lane.queue:
            entry = lane.queue.popleft()
            if entry.answer.done():
                continue
            if entry.route != route:
                left.append(entry)
            elif taken and size + len(entry.items) > self._max_batch:
                left.append(entry)
                left.extend(lane.queue)
                lane.queue.clear()
            else:
                taken.append(entry)
                size += len(entry.items)
        lane.queue = left
        return taken

    async def _run(
        self, member: int, lane: _Lane[Item, Route], batch: list[_Entry[Item, Route]]
    ) -> None:
        try:
            items = [item for entry in batch for item in entry.items]
            self.counters.calls += 1
            self.counters.batches += len(batch)
            self.counters.items += len(items)
            answer = await self._call(member, items, batch[0].route)
            if isinstance(answer, list):
                if len(answer) != len(items):
                    raise RuntimeError(f"{len(answer)} results for {len(items)} items")
                start = 0
                for entry in batch:
                    end = start + len(entry.items)
                    _settle(entry, answer[start:end])
                    start = end
            else:
                for entry in batch:
                    _settle(entry, answer)
        except asyncio.CancelledError:
            for entry in batch:
                entry.answer.cancel()
            raise
        except Exception as exc:  # a bug in the call: every caller sees it, none hangs
            for entry in batch:
                if not entry.answer.done():
                    entry.answer.set_exception(exc)
        finally:
            lane.running -= 1
            self._pump(member, lane)


def _settle(entry: _Entry[Any, Any], answer: object) -> None:
    """Hand ``answer`` to a caller once (one that gave up no longer listens)."""
    if not entry.answer.done():
        entry.answer.set_result(answer)
