"""Peek-locks and the settlement of what they hold: complete, abandon, release, defer,
dead-letter, renew, and the return of a message whose lock expired.

A lock outlives its link, as in Service Bus: it ends by settlement or by expiry. Every
method runs on the reactor's thread (the broker's and the management link's calls)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proton import Delivery, Link, symbol

from sbemu import codec
from sbemu.config import QueueConfig
from sbemu.links import error, new_tag, tag_of
from sbemu.management import LOCK_LOST, ManagementError
from sbemu.store import DEAD_LETTER, DEFERRED, MAIN, Store


@dataclass
class Lock:
    """A peek-lock held through one delivery."""

    seq: int
    queue: str
    sub: str
    until: float
    link: Link | None


class Locks:
    """The broker's peek-locks by lock token; ``wake`` offers a queue's messages again."""

    def __init__(
        self,
        queues: dict[str, QueueConfig],
        store: Store,
        wake: Callable[[str, str], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queues, self.store, self.wake, self.clock = queues, store, wake, clock
        self.held: dict[bytes, Lock] = {}

    def hold(self, seq: int, queue: str, sub: str, until: float, link: Link | None) -> bytes:
        """Record a new lock; its token."""
        tag = new_tag()
        self.held[tag] = Lock(seq, queue, sub, until, link)
        return tag

    def forget_connection(self, connection: Any) -> None:
        """The connection closed: its locks stay (they expire) but lose their link."""
        for lock in self.held.values():
            if lock.link is not None and lock.link.connection == connection:
                lock.link = None

    def settle(self, dlv: Any) -> None:
        """Carry out the outcome a receiver set on a delivery, and echo it."""
        state = dlv.remote_state
        tag = tag_of(dlv)
        if state is None:
            return
        if dlv.settled and state == Delivery.RELEASED:
            self.release(tag)
            dlv.settle()
            return
        try:
            self._carry_out(dlv, state, tag)
            echo = state
        except ManagementError as exc:
            dlv.local.condition = error(exc.condition, str(exc))
            echo = Delivery.REJECTED
        if echo == Delivery.MODIFIED:
            dlv.local.failed = dlv.remote.failed
            dlv.local.undeliverable = dlv.remote.undeliverable
        dlv.update(echo)
        dlv.settle()

    def _carry_out(self, dlv: Any, state: Any, tag: bytes) -> None:
        if state == Delivery.ACCEPTED:
            self.complete(tag)
        elif state == Delivery.REJECTED:
            condition = dlv.remote.condition
            info = dict(condition.info or {}) if condition else {}
            self.dead_letter(
                tag,
                str(_info(info, "DeadLetterReason")),
                str(_info(info, "DeadLetterErrorDescription")),
            )
        elif state == Delivery.MODIFIED:
            if dlv.remote.undeliverable:
                self.defer(tag)
            else:
                self.abandon(tag)
        elif state == Delivery.RELEASED:
            self.release(tag)

    def _take(self, tag: bytes) -> Lock:
        lock = self.held.pop(tag, None)
        if lock is None or lock.until <= self.clock():
            raise ManagementError(
                LOCK_LOST,
                "The lock supplied is invalid. Either the lock expired, or the message has "
                "already been removed from the queue.",
            )
        return lock

    def complete(self, tag: bytes) -> None:
        """Remove the message."""
        self.store.delete(self._take(tag).seq)

    def abandon(self, tag: bytes) -> None:
        """Unlock for redelivery, or dead-letter past the max delivery count."""
        lock = self._take(tag)
        self.returned(lock.seq, lock.queue, lock.sub)

    def release(self, tag: bytes) -> None:
        """The client never handed the message to the application: not a failed delivery."""
        lock = self.held.pop(tag, None)
        if lock is not None:
            self.store.unlock(lock.seq, count_delivery=False)
            self.wake(lock.queue, lock.sub)

    def defer(self, tag: bytes) -> None:
        """Set aside; only receive-by-sequence-number returns it."""
        self.store.defer(self._take(tag).seq)

    def dead_letter(self, tag: bytes, reason: str, description: str) -> None:
        """Move to the dead-letter sub-queue with the reason."""
        lock = self._take(tag)
        self.store.dead_letter(lock.seq, reason, description)
        self.wake(lock.queue, DEAD_LETTER)

    def renew(self, tag: bytes) -> float:
        """Extend the lock by the queue's lock duration; returns the new expiry."""
        lock = self._take(tag)
        lock.until = self.clock() + self.queues[lock.queue].lock_duration_s
        self.store.renew(lock.seq, lock.until)
        self.held[tag] = lock
        return lock.until

    def lock_deferred(self, queue: str, sub: str, seq: int) -> tuple[bytes, bytes]:
        """Lock a deferred message for a receive by sequence number; ``(tag, payload)``."""
        row = self.store.get(seq)
        if row is None or row.queue != queue or row.sub != sub or row.state != DEFERRED:
            raise ManagementError(
                "com.microsoft:message-not-found", f"no deferred message {seq} in {queue}", 404
            )
        until = self.clock() + self.queues[queue].lock_duration_s
        deliveries = self.store.lock(seq, until)
        tag = self.hold(seq, queue, sub, until, None)
        return tag, codec.render_stored(row, deliveries - 1, until)

    def expire(self, now: float) -> None:
        """Return the messages whose locks ran out."""
        for row in self.store.expired_locks(now):
            for tag, lock in list(self.held.items()):
                if lock.seq == row.seq:
                    del self.held[tag]
            self.returned(row.seq, row.queue, row.sub)

    def returned(self, seq: int, queue: str, sub: str) -> None:
        """A failed delivery (abandon or lock expiry)."""
        row = self.store.get(seq)
        if row is None:
            return
        if sub == MAIN and row.deliveries >= self.queues[queue].max_delivery_count:
            self.store.dead_letter(
                seq,
                "MaxDeliveryCountExceeded",
                f"Message could not be consumed after {row.deliveries} delivery attempts.",
            )
            self.wake(queue, DEAD_LETTER)
        else:
            self.store.unlock(seq)
            self.wake(queue, sub)


def _info(info: dict[Any, Any], key: str) -> Any:
    """A dead-letter property of a rejected outcome, keyed by string or by symbol."""
    return info.get(key, info.get(symbol(key), ""))
