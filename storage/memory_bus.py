"""An in-process ``MessageBus`` with Service Bus semantics: peek-lock with lock expiry,
delivery counts, max delivery count → dead-letter queue, scheduled messages, and duplicate
detection by message id; and its ``QueueStats``. Not durable: for unit tests and
single-process local runs."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from app.application.ports import (
    DEAD_LETTER_DESCRIPTION,
    DEAD_LETTER_REASON,
    DEAD_LETTER_SUFFIX,
    MAX_MESSAGE_BYTES,
    BusMessage,
    QueueDepth,
    ReceivedMessage,
    dead_letter_queue,
)
from app.domain.errors import MessageRefused, NotFound
from app.domain.ids import MAX_MESSAGE_ID_LENGTH


@dataclass
class _Entry:
    message: BusMessage
    sequence: int
    delivery_count: int = 0
    dead_letter_reason: str | None = None
    dead_letter_description: str | None = None


@dataclass
class _Queue:
    ready: deque[_Entry] = field(default_factory=deque)
    scheduled: list[tuple[float, int, _Entry]] = field(default_factory=list)
    locked: dict[str, tuple[_Entry, float]] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


def _as_seen(entry: _Entry) -> BusMessage:
    """The message as a receiver sees it: with the dead-letter reason, as Service Bus's
    properties are surfaced by the SDK adapter."""
    message = entry.message
    if entry.dead_letter_reason is None:
        return message
    props = {
        DEAD_LETTER_REASON: entry.dead_letter_reason,
        DEAD_LETTER_DESCRIPTION: entry.dead_letter_description or "",
    }
    return BusMessage(message.message_id, {**message.body, **props}, message.subject)


def check_limits(message: BusMessage) -> None:
    """Refuse what Service Bus refuses: a message id over 128 characters, a message over
    256 KiB (counted as the JSON body and the properties, as the SDK adapter sends it)."""
    if len(message.message_id) > MAX_MESSAGE_ID_LENGTH:
        raise MessageRefused(
            f"message id of {len(message.message_id)} characters "
            f"(Service Bus allows {MAX_MESSAGE_ID_LENGTH}): {message.message_id[:40]}…"
        )
    body = json.dumps(message.body, separators=(",", ":")).encode()
    size = len(body) + len(message.message_id.encode()) + len(message.subject.encode())
    if size > MAX_MESSAGE_BYTES:
        raise MessageRefused(f"message of {size} bytes (Service Bus allows {MAX_MESSAGE_BYTES})")


class MessageLockLost(RuntimeError):
    """The lock expired (or the message was settled) before this settlement."""


class InMemoryMessageBus:
    """``MessageBus`` held in this process's memory."""

    def __init__(
        self,
        lock_duration_s: float = 60.0,
        max_delivery_count: int = 10,
        dedup_window_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock_duration_s = lock_duration_s
        self._max_delivery_count = max_delivery_count
        self._dedup_window_s = dedup_window_s
        self._clock = clock
        self._queues: dict[str, _Queue] = {}
        self._sequence = itertools.count(1)

    def _queue(self, name: str) -> _Queue:
        return self._queues.setdefault(name, _Queue())

    def _is_duplicate(self, queue: _Queue, message_id: str) -> bool:
        now = self._clock()
        for mid, at in list(queue.seen.items()):
            if now - at > self._dedup_window_s:
                del queue.seen[mid]
        if message_id in queue.seen:
            return True
        queue.seen[message_id] = now
        return False

    async def publish(self, queue: str, message: BusMessage) -> None:
        """Enqueue now; a message id seen within the window is dropped."""
        check_limits(message)
        q = self._queue(queue)
        if self._is_duplicate(q, message.message_id):
            return
        q.ready.append(_Entry(message, next(self._sequence)))
        q.arrived.set()

    async def schedule(self, queue: str, message: BusMessage, delay_s: float) -> int:
        """Enqueue to become visible ``delay_s`` from now."""
        check_limits(message)
        q = self._queue(queue)
        sequence = next(self._sequence)
        if not self._is_duplicate(q, message.message_id):
            entry = _Entry(message, sequence)
            heapq.heappush(q.scheduled, (self._clock() + max(delay_s, 0.0), sequence, entry))
        q.arrived.set()
        return sequence

    def _release_due(self, name: str, q: _Queue) -> None:
        now = self._clock()
        while q.scheduled and q.scheduled[0][0] <= now:
            q.ready.append(heapq.heappop(q.scheduled)[2])
        for token, (entry, expires) in list(q.locked.items()):
            if expires <= now:
                del q.locked[token]
                self._return(name, entry)

    def _return(self, name: str, entry: _Entry) -> None:
        """A delivery failed (abandon or lock expiry): redeliver or dead-letter."""
        if entry.delivery_count >= self._max_delivery_count and DEAD_LETTER_SUFFIX not in name:
            entry.dead_letter_reason = "MaxDeliveryCountExceeded"
            entry.dead_letter_description = (
                f"delivered {entry.delivery_count} times without being completed"
            )
            self._queue(dead_letter_queue(name)).ready.append(entry)
        else:
            self._queue(name).ready.appendleft(entry)

    def _next_due_in(self, q: _Queue) -> float | None:
        times = [at for at, _, _ in q.scheduled[:1]] + [exp for _, exp in q.locked.values()]
        return max(min(times) - self._clock(), 0.0) if times else None

    async def receive(
        self, queue: str, max_messages: int, max_wait_s: float
    ) -> list[ReceivedMessage]:
        """Lock up to ``max_messages`` ready messages, waiting up to ``max_wait_s``."""
        q = self._queue(queue)
        deadline = self._clock() + max_wait_s
        while True:
            self._release_due(queue, q)
            if q.ready:
                count = min(max_messages, len(q.ready))
                return [self._lock(queue, q, q.ready.popleft()) for _ in range(count)]
            remaining = deadline - self._clock()
            if remaining <= 0:
                return []
            due = self._next_due_in(q)
            q.arrived.clear()
            wait = min(remaining, 1.0 if due is None else due)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(q.arrived.wait(), wait)

    def _lock(self, name: str, q: _Queue, entry: _Entry) -> ReceivedMessage:
        token = uuid.uuid4().hex
        entry.delivery_count += 1
        q.locked[token] = (entry, self._clock() + self._lock_duration_s)
        # Service Bus counts earlier failed deliveries; so does the port.
        return ReceivedMessage(_as_seen(entry), entry.delivery_count - 1, (name, token))

    async def peek(self, queue: str, max_messages: int) -> list[BusMessage]:
        """Ready and locked messages, oldest first, without locking them."""
        q = self._queue(queue)
        self._release_due(queue, q)
        entries = sorted([*q.ready, *(e for e, _ in q.locked.values())], key=lambda e: e.sequence)
        return [_as_seen(e) for e in entries[:max_messages]]

    def _settle(self, received: ReceivedMessage) -> tuple[str, _Entry]:
        name, token = received.lock_token
        held = self._queue(name).locked.pop(token, None)
        if held is None:
            raise MessageLockLost(f"lock of message {received.message.message_id!r} was lost")
        return name, held[0]

    async def complete(self, received: ReceivedMessage) -> None:
        """Remove the message."""
        self._settle(received)

    async def abandon(self, received: ReceivedMessage) -> None:
        """Unlock for redelivery now (dead-lettered past the max delivery count)."""
        name, entry = self._settle(received)
        self._return(name, entry)
        self._queue(name).arrived.set()

    async def dead_letter(self, received: ReceivedMessage, reason: str, description: str) -> None:
        """Move the message to ``<queue>/$deadletterqueue`` with the reason."""
        name, entry = self._settle(received)
        entry.dead_letter_reason, entry.dead_letter_description = reason, description
        entry.delivery_count = 0
        self._queue(dead_letter_queue(name)).ready.append(entry)

    def depth(self, queue: str) -> int:
        """Messages waiting, scheduled or locked in ``queue`` (for tests and operators)."""
        q = self._queue(queue)
        return len(q.ready) + len(q.scheduled) + len(q.locked)

    def counts(self, queue: str) -> QueueDepth:
        """``queue``'s depth as Service Bus counts it: locked messages are still active."""
        q, dead = self._queue(queue), self._queue(dead_letter_queue(queue))
        self._release_due(queue, q)
        self._release_due(dead_letter_queue(queue), dead)
        return QueueDepth(
            active=len(q.ready) + len(q.locked),
            scheduled=len(q.scheduled),
            dead_letter=len(dead.ready) + len(dead.locked),
        )

    async def close(self) -> None:
        """Nothing to release."""


class InMemoryQueueStats:
    """``QueueStats`` of an ``InMemoryMessageBus``. The bus makes queues on first use;
    these stats know only the ``queues`` declared here, as Service Bus knows only the
    queues a namespace declares."""

    def __init__(self, bus: InMemoryMessageBus, queues: Iterable[str]) -> None:
        self._bus = bus
        self._declared = frozenset(queues)

    async def depths(self, queues: Sequence[str]) -> dict[str, QueueDepth]:
        """Each queue's counts; ``NotFound`` for a queue not declared."""
        for queue in queues:
            if queue not in self._declared:
                declared = ", ".join(sorted(self._declared))
                raise NotFound(f"queue {queue!r} does not exist (declared: {declared})")
        return {queue: self._bus.counts(queue) for queue in queues}

    async def close(self) -> None:
        """Nothing to release."""
