"""The ``MessageBus`` on Azure Service Bus, through the official async SDK.

The connection string decides where it goes: Azure (``Endpoint=sb://<ns>.servicebus.
windows.net/;SharedAccessKeyName=…``), Microsoft's emulator or the project's local broker
(``…;UseDevelopmentEmulator=true``). Queues must exist: they are declared in
``config/servicebus.json`` (emulators) or by the deployment (Azure).

A received message stays locked while this process holds it: a task renews its lock at
half its remaining time until it is settled (or ``max_lock_renewal_s`` passes), so a slow
saga step does not get its message redelivered to a second worker. If the process dies,
renewal stops and the broker redelivers the message when the lock expires. (The SDK's
``AutoLockRenewer`` was tried first; with locks shorter than its 10 s renew period it did
not renew in time.) Renewals of one receiver's messages go one at a time: concurrent
management requests on one link made the SDK send transfers out of delivery-id order,
which a strict broker answers by ending the session (found by the chaos tests).

A receiver the SDK has shut down (it does so after an error on its management link) can
neither receive nor settle: it is dropped, and the next receive opens a new one. The
messages it held come back when their locks expire.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage, ServiceBusSubQueue
from azure.servicebus.aio import ServiceBusClient, ServiceBusReceiver, ServiceBusSender
from azure.servicebus.exceptions import (
    MessageSizeExceededError,
    OperationTimeoutError,
    ServiceBusConnectionError,
    ServiceBusError,
)

from app.application.ports import (
    DEAD_LETTER_DESCRIPTION,
    DEAD_LETTER_REASON,
    DEAD_LETTER_SUFFIX,
    BusMessage,
    ReceivedMessage,
)
from app.domain.errors import BusUnavailable, MessageRefused

log = logging.getLogger(__name__)

JSON = "application/json"
UNREADABLE = "unreadable_body"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Lock:
    """What settling needs: the receiver that holds the lock, and the SDK's message."""

    queue: str
    receiver: ServiceBusReceiver
    message: ServiceBusReceivedMessage


def split_queue(queue: str) -> tuple[str, ServiceBusSubQueue | None]:
    """``"matches/$deadletterqueue"`` → ``("matches", DEAD_LETTER)``."""
    if queue.lower().endswith(DEAD_LETTER_SUFFIX):
        return queue[: -len(DEAD_LETTER_SUFFIX)], ServiceBusSubQueue.DEAD_LETTER
    return queue, None


def to_sdk(message: BusMessage) -> ServiceBusMessage:
    """A JSON body; the message id is the bus's duplicate-detection key. ``MessageRefused``
    for an id Service Bus would refuse (the SDK raises a bare ``ValueError``)."""
    try:
        return ServiceBusMessage(
            json.dumps(message.body, separators=(",", ":")).encode(),
            message_id=message.message_id,
            subject=message.subject or None,
            content_type=JSON,
        )
    except ValueError as exc:
        raise MessageRefused(f"Service Bus refuses the message: {exc}") from exc


def from_sdk(message: ServiceBusReceivedMessage) -> BusMessage:
    """The port's view of a received message. A body that is not a JSON object (someone
    else's message) becomes ``{"unreadable_body": …}``: the worker dead-letters it as
    unprocessable instead of failing on it forever."""
    raw = message.body
    data = raw if isinstance(raw, bytes) else b"".join(raw)
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {UNREADABLE: data[:1024].decode("utf-8", "replace")}
    if message.dead_letter_reason is not None:
        body[DEAD_LETTER_REASON] = message.dead_letter_reason
        body[DEAD_LETTER_DESCRIPTION] = message.dead_letter_error_description or ""
    return BusMessage(str(message.message_id), body, message.subject or "")


class ServiceBusMessageBus:
    """``MessageBus`` over ``azure.servicebus.aio``: one sender and one receiver per queue,
    opened on first use and reopened after a connection failure."""

    def __init__(
        self,
        connection_string: str,
        *,
        max_lock_renewal_s: float = 300.0,
        retry_total: int = 3,
        lost_settlement: float = 0.0,
    ) -> None:
        self._client = ServiceBusClient.from_connection_string(
            connection_string, retry_total=retry_total
        )
        self._senders: dict[str, ServiceBusSender] = {}
        self._receivers: dict[str, ServiceBusReceiver] = {}
        self._receive_locks: dict[str, asyncio.Lock] = {}
        self._send_locks: dict[str, asyncio.Lock] = {}
        self._renew_locks: dict[str, asyncio.Lock] = {}
        self._open_lock = asyncio.Lock()
        self._max_lock_renewal_s = max_lock_renewal_s
        self._renewals: dict[int, asyncio.Task[None]] = {}
        # Fault injection: this share of completions is dropped on the floor.
        self._lost_settlement = lost_settlement
        self._chance = random.Random()
        self.settlements_lost = 0

    async def _sender(self, queue: str) -> ServiceBusSender:
        async with self._open_lock:
            if queue not in self._senders:
                sender = self._client.get_queue_sender(queue)
                await sender.__aenter__()  # open now, with the SDK's own timeout and retries
                self._senders[queue] = sender
            return self._senders[queue]

    async def _receiver(self, queue: str) -> ServiceBusReceiver:
        async with self._open_lock:
            if queue not in self._receivers:
                name, sub_queue = split_queue(queue)
                receiver = self._client.get_queue_receiver(
                    name, sub_queue=sub_queue, prefetch_count=0
                )
                # Opened here: a receive would otherwise spend its (short) wait on the
                # handshake, and fail if the handshake takes longer.
                await receiver.__aenter__()
                self._receivers[queue] = receiver
            return self._receivers[queue]

    async def _discard(self, cache: dict[str, Any], queue: str) -> None:
        """Forget a link after a connection failure, so the next call opens a fresh one."""
        link = cache.pop(queue, None)
        if link is not None:
            try:
                await link.close()
            except Exception:  # already broken; closing is best effort
                log.debug("closing a broken link to %s failed", queue, exc_info=True)

    async def _send(self, queue: str, call: Callable[[ServiceBusSender], Awaitable[T]]) -> T:
        # One operation at a time per sender: the SDK's sender is not safe for concurrent
        # sends (an error in one closes the handler under the others).
        async with self._send_locks.setdefault(queue, asyncio.Lock()):
            try:
                return await call(await self._sender(queue))
            except MessageSizeExceededError as exc:
                raise MessageRefused(f"Service Bus refuses the message: {exc}") from exc
            except (ServiceBusConnectionError, OperationTimeoutError) as exc:
                # The link may be broken: the next send opens a fresh one. The port's
                # transient error lets callers (ingest's in-process retry) try again.
                await self._discard(self._senders, queue)
                raise BusUnavailable(f"Service Bus did not take the message: {exc}") from exc

    async def publish(self, queue: str, message: BusMessage) -> None:
        """Send now; Service Bus drops a repeat of a recent message id (if the queue
        requires duplicate detection)."""
        await self._send(queue, lambda s: s.send_messages(to_sdk(message)))

    async def schedule(self, queue: str, message: BusMessage, delay_s: float) -> int:
        """Schedule for ``delay_s`` from now; returns the sequence number that cancels it."""
        at = datetime.now(UTC) + timedelta(seconds=max(delay_s, 0.0))
        numbers = await self._send(queue, lambda s: s.schedule_messages(to_sdk(message), at))
        return int(numbers[0])

    async def receive(
        self, queue: str, max_messages: int, max_wait_s: float
    ) -> list[ReceivedMessage]:
        """Peek-lock up to ``max_messages``; the locks are renewed until settled."""
        receiver = await self._receiver(queue)
        # The SDK's receive is not re-entrant on one receiver.
        async with self._receive_locks.setdefault(queue, asyncio.Lock()):
            try:
                batch = await receiver.receive_messages(
                    max_message_count=max_messages, max_wait_time=max_wait_s
                )
            except (ServiceBusConnectionError, OperationTimeoutError):
                await self._discard(self._receivers, queue)
                raise
            except Exception:
                await self._drop_if_shut_down(queue, receiver)
                raise
        received = []
        for sdk_message in batch:
            key = id(sdk_message)  # unique while the task holds the message
            task = asyncio.create_task(self._keep_locked(queue, receiver, sdk_message))
            task.add_done_callback(functools.partial(self._forget_renewal, key))
            self._renewals[key] = task
            received.append(
                ReceivedMessage(
                    from_sdk(sdk_message),
                    sdk_message.delivery_count or 0,
                    _Lock(queue, receiver, sdk_message),
                )
            )
        return received

    async def peek(self, queue: str, max_messages: int) -> list[BusMessage]:
        """Look at up to ``max_messages`` from the head of the queue without locking."""
        receiver = await self._receiver(queue)
        async with self._receive_locks.setdefault(queue, asyncio.Lock()):
            try:
                # From the first sequence number (they start at 1): without one, or with 0,
                # the SDK's receiver continues after the last message it peeked.
                batch = await receiver.peek_messages(
                    max_message_count=max_messages, sequence_number=1
                )
            except (ServiceBusConnectionError, OperationTimeoutError):
                await self._discard(self._receivers, queue)
                raise
        return [from_sdk(m) for m in batch]

    async def _keep_locked(self, queue: str, receiver: ServiceBusReceiver, message: Any) -> None:
        """Renew the lock at half its remaining time until cancelled (settled)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_lock_renewal_s
        try:
            while loop.time() < deadline:
                left = (message.locked_until_utc - datetime.now(UTC)).total_seconds()
                await asyncio.sleep(max(left / 2, 0.2))
                async with self._renew_locks.setdefault(queue, asyncio.Lock()):
                    await receiver.renew_message_lock(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the lock will expire and the broker redeliver
            log.warning("lock renewal of message %s failed: %s", message.message_id, exc)
            await self._drop_if_shut_down(queue, receiver)

    async def _drop_if_shut_down(self, queue: str, receiver: ServiceBusReceiver) -> None:
        # ``_running`` is the SDK's own flag (it refuses to settle when it is False); there
        # is no public one.
        if not getattr(receiver, "_running", True) and self._receivers.get(queue) is receiver:
            log.warning("the receiver of %s was shut down by the SDK; opening a new one", queue)
            await self._discard(self._receivers, queue)

    async def _settle(self, lock: _Lock, call: Callable[[], Awaitable[None]]) -> None:
        self._settled(lock)
        try:
            await call()
        except Exception:
            await self._drop_if_shut_down(lock.queue, lock.receiver)
            raise

    def _forget_renewal(self, key: int, task: asyncio.Task[None]) -> None:
        # Only if it is still this task (a settled message's entry is already gone).
        if self._renewals.get(key) is task:
            del self._renewals[key]

    def _settled(self, lock: _Lock) -> None:
        task = self._renewals.pop(id(lock.message), None)
        if task is not None:
            task.cancel()

    async def complete(self, received: ReceivedMessage) -> None:
        """Remove the message; raises ``MessageLockLostError`` if its lock was lost."""
        lock: _Lock = received.lock_token
        if self._lost_settlement and self._chance.random() < self._lost_settlement:
            # As if the disposition frame never arrived: the lock runs out, the broker
            # delivers the message again, and the saga must take it as a repeat.
            self._settled(lock)
            self.settlements_lost += 1
            log.warning("fault injection: completion of %s lost", lock.message.message_id)
            return
        await self._settle(lock, lambda: lock.receiver.complete_message(lock.message))

    async def abandon(self, received: ReceivedMessage) -> None:
        """Unlock for redelivery; past the queue's max delivery count it is dead-lettered."""
        lock: _Lock = received.lock_token
        await self._settle(lock, lambda: lock.receiver.abandon_message(lock.message))

    async def dead_letter(self, received: ReceivedMessage, reason: str, description: str) -> None:
        """Move to the queue's dead-letter sub-queue with the reason."""
        lock: _Lock = received.lock_token
        await self._settle(
            lock,
            lambda: lock.receiver.dead_letter_message(
                lock.message, reason=reason, error_description=description
            ),
        )

    async def close(self) -> None:
        """Stop renewing, close every link and the connection."""
        for task in self._renewals.values():
            task.cancel()
        self._renewals.clear()
        # At once: each receiver's close waits out the SDK's keep-alive loop (it wakes
        # once a second), so closing them one by one made a worker's stop seconds long.
        await asyncio.gather(
            *(self._discard(c, q) for c in (self._receivers, self._senders) for q in list(c))
        )
        try:
            await self._client.close()
        except ServiceBusError:
            log.debug("closing the Service Bus client failed", exc_info=True)
