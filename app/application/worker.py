"""The worker: takes saga messages off the bus, turns each into a saga command (a message
that is none is dead-lettered there, with the reason) and hands it to a ``SagaRunner``.

A message is settled only after the saga step it carries is durable and the follow-up
messages (scheduled retries, dead-letters) are on the bus: a crash before that leaves the
message locked, and the bus redelivers it when the lock expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from app.application.messages import (
    MATCHES_QUEUE,
    MAX_REASON_CHARS,
    PLAYER_UPDATES_QUEUE,
    Rejected,
    log_fields,
    to_command,
)
from app.application.outbox import flush
from app.application.ports import MessageBus, ReceivedMessage, SagaReply, SagaRunner
from app.domain.errors import DomainError, NotFound, TransientError
from app.domain.retry import RetryPolicy, next_delay
from app.observability.logs import bind

log = logging.getLogger(__name__)


@dataclass
class WorkerCounters:
    """What the worker has done since it started."""

    completed: int = 0
    abandoned: int = 0
    dead_lettered: int = 0
    settle_failures: int = 0
    # Seconds failed messages were held before going back (``Worker.redelivery``).
    held_back_s: float = 0.0

    def count(self, handled: Handled) -> None:
        """Count one handled message."""
        match handled.outcome:
            case "completed":
                self.completed += 1
            case "abandoned":
                self.abandoned += 1
            case "dead_lettered":
                self.dead_lettered += 1
            case "unsettled":
                self.settle_failures += 1


REDELIVERY = RetryPolicy(base_s=0.2, cap_s=5.0, jitter=0.5)
Outcome = Literal["completed", "abandoned", "dead_lettered", "unsettled"]


@dataclass(frozen=True, slots=True)
class Handled:
    """How one message ended: its settlement (``unsettled``: the settle call failed and
    the bus redelivers it), the dead-letter reason, and the saga's reply once the
    messages it asked for are sent."""

    queue: str
    outcome: Outcome
    reply: SagaReply | None = None
    reason: str | None = None


class HandledObserver(Protocol):
    """Sees every message the worker handles (the metrics)."""

    def handled(self, handled: Handled) -> None:
        """Observe one handled message; must not raise."""
        ...


@dataclass
class Worker:
    """Consumes ``matches`` and ``player-updates`` with bounded concurrency."""

    bus: MessageBus
    runner: SagaRunner
    concurrency: int = 32
    receive_wait_s: float = 1.0
    # How long the receive after a queue's first message waits to fill the free slots:
    # what arrives meanwhile waits at most this long (the first message does not).
    batch_wait_s: float = 0.02
    counters: WorkerCounters = field(default_factory=WorkerCounters)
    observer: HandledObserver | None = None
    # A message whose step failed transiently is held (its lock kept) for this back-off
    # before it goes back. Abandoned at once, a storage blip of a second used up all its
    # deliveries (MaxDeliveryCount 10) and dead-lettered it (the long-ids chaos test
    # caught one); held, ten deliveries span about 20 s. The cap stays below the
    # shortest lock the queues use.
    redelivery: RetryPolicy = field(default_factory=lambda: REDELIVERY)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Consume until ``stop`` is called; in-flight messages finish first."""
        slots = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        loops = [
            asyncio.create_task(self._consume(q, slots, tasks))
            for q in (MATCHES_QUEUE, PLAYER_UPDATES_QUEUE)
        ]
        try:
            await self._stopping.wait()
        finally:
            for loop in loops:
                loop.cancel()
            for loop in loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        """Ask ``run`` to return after the messages in flight."""
        self._stopping.set()

    async def _consume(
        self, queue: str, slots: asyncio.Semaphore, tasks: set[asyncio.Task[None]]
    ) -> None:
        """Wait for the queue's next message holding one slot, start it at once, then take
        what else is waiting with the slots free at that moment. An idle queue so holds one
        slot, not every free one through its receive wait (the idle ``player-updates`` loop
        held them all, and matches waited for their saga). The first message is received
        alone because the SDK, once a message came, keeps a receive open 0.2 s more to fill
        the batch: asked for many with few waiting, every message would wait that long."""
        while True:
            await slots.acquire()
            try:
                first = await self.bus.receive(queue, 1, self.receive_wait_s)
            except Exception:
                log.exception("receive from %s failed; retrying", queue)
                first = []
                await asyncio.sleep(1.0)
            if not first:
                slots.release()
                continue
            self._start(queue, first[0], slots, tasks)
            held = 0
            while held < self.concurrency and not slots.locked():
                await slots.acquire()
                held += 1
            more: list[ReceivedMessage] = []
            if held:
                try:
                    more = await self.bus.receive(queue, held, self.batch_wait_s)
                except Exception:  # the next round's receive retries and logs
                    log.debug("batch receive from %s failed", queue, exc_info=True)
            for _ in range(held - len(more)):
                slots.release()
            for received in more:
                self._start(queue, received, slots, tasks)

    def _start(
        self,
        queue: str,
        received: ReceivedMessage,
        slots: asyncio.Semaphore,
        tasks: set[asyncio.Task[None]],
    ) -> None:
        task = asyncio.create_task(self._handle(queue, received, slots))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _handle(
        self, queue: str, received: ReceivedMessage, slots: asyncio.Semaphore
    ) -> None:
        try:
            with bind(**log_fields(received.message)):
                await self.handle(queue, received)
        finally:
            slots.release()

    async def handle(self, queue: str, received: ReceivedMessage) -> None:
        """Process one message and settle it."""
        handled = await self._process(queue, received)
        self.counters.count(handled)
        if self.observer is not None:
            self.observer.handled(handled)

    async def _process(self, queue: str, received: ReceivedMessage) -> Handled:
        try:
            command = to_command(queue, received.message, received.delivery_count == 0)
        except Rejected as rejected:
            return await self._dead_letter(queue, received, rejected.reason, rejected.description)
        try:
            reply = await self.runner.handle(command)
            await flush(list(reply.outbox), self.bus)
        except (NotFound, KeyError, ValueError) as exc:
            # Retrying cannot help a message about nothing we know (or whose stored saga
            # does not parse): the operators look at it.
            return await self._dead_letter(
                queue, received, "UnprocessableMessage", f"{type(exc).__name__}: {exc}"
            )
        except Exception as exc:
            transient = isinstance(exc, TransientError) or not isinstance(exc, DomainError)
            log.warning(
                "message %s on %s failed (%s): %s",
                received.message.message_id,
                queue,
                "will be redelivered" if transient else "dead-lettering",
                exc,
            )
            if not transient:
                return await self._dead_letter(queue, received, type(exc).__name__, str(exc))
            await self._hold_back(received)
            settled = await self._settle(received, "abandon", self.bus.abandon(received))
            return Handled(queue, "abandoned" if settled else "unsettled")
        settled = await self._settle(received, "complete", self.bus.complete(received))
        return Handled(queue, "completed" if settled else "unsettled", reply)

    async def _hold_back(self, received: ReceivedMessage) -> None:
        """Wait the back-off of the message's delivery before it goes back; a worker
        stopping lets it go at once."""
        delay = next_delay(self.redelivery, received.delivery_count + 1)
        began = asyncio.get_running_loop().time()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)
        self.counters.held_back_s += asyncio.get_running_loop().time() - began

    async def _settle(self, received: ReceivedMessage, how: str, call: Awaitable[None]) -> bool:
        """Settle; a failure is logged, not raised: the work is durable, the message comes
        back when its lock expires, and its repeat is harmless (the saga is idempotent)."""
        try:
            await call
            return True
        except Exception as exc:
            log.warning(
                "message %s: %s failed (%s: %s); it will be redelivered when its lock expires",
                received.message.message_id,
                how,
                type(exc).__name__,
                exc,
            )
            return False

    async def _dead_letter(
        self, queue: str, received: ReceivedMessage, reason: str, description: str
    ) -> Handled:
        call = self.bus.dead_letter(received, reason, description[:MAX_REASON_CHARS])
        settled = await self._settle(received, "dead-letter", call)
        return Handled(queue, "dead_lettered" if settled else "unsettled", reason=reason)
