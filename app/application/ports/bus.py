"""The message bus and its queue statistics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the commands carry a ``CarriedStart``, a port's type: no import cycle
    pass


@dataclass(frozen=True, slots=True)
class BusMessage:
    """A message to publish; ``message_id`` drives the bus's duplicate detection."""

    message_id: str
    body: Mapping[str, Any]
    subject: str = ""


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A peek-locked message: settle it with complete, abandon or dead_letter."""

    message: BusMessage
    delivery_count: int
    lock_token: Any = field(compare=False)


# A queue's dead-letter sub-queue is addressed as Service Bus does it, and a dead letter's
# reason and description come with its body under Service Bus's property names.
DEAD_LETTER_SUFFIX = "/$deadletterqueue"
DEAD_LETTER_REASON, DEAD_LETTER_DESCRIPTION = "DeadLetterReason", "DeadLetterErrorDescription"
# Service Bus Standard's largest message (body and properties).
MAX_MESSAGE_BYTES = 256 * 1024


def dead_letter_queue(queue: str) -> str:
    """The address of ``queue``'s dead-letter sub-queue."""
    return queue + DEAD_LETTER_SUFFIX


class MessageBus(Protocol):
    """Queues with peek-lock delivery, scheduling and dead-lettering (Service Bus's model)."""

    async def publish(self, queue: str, message: BusMessage) -> None:
        """Enqueue durably; a repeat of a recent ``message_id`` is dropped. A message over
        Service Bus's limits (id ≤ 128 characters, ≤ 256 KiB) raises ``MessageRefused``."""
        ...

    async def schedule(self, queue: str, message: BusMessage, delay_s: float) -> int:
        """Enqueue to become visible after ``delay_s``; returns a sequence number. Same
        limits as ``publish``."""
        ...

    async def receive(
        self, queue: str, max_messages: int, max_wait_s: float
    ) -> list[ReceivedMessage]:
        """Lock and return up to ``max_messages``; waits at most ``max_wait_s`` for one."""
        ...

    async def peek(self, queue: str, max_messages: int) -> list[BusMessage]:
        """Up to ``max_messages`` from the head of ``queue``, without locking them (the
        dead-letter view; ``queue`` may be ``<name>/$deadletterqueue``)."""
        ...

    async def complete(self, received: ReceivedMessage) -> None:
        """The message's work is durable: remove it."""
        ...

    async def abandon(self, received: ReceivedMessage) -> None:
        """Give the message back for redelivery (its delivery count grows)."""
        ...

    async def dead_letter(self, received: ReceivedMessage, reason: str, description: str) -> None:
        """Move the message to the queue's dead-letter sub-queue."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """How many messages one queue holds, as Service Bus counts them."""

    active: int = 0
    scheduled: int = 0
    dead_letter: int = 0


class QueueStats(Protocol):
    """Queue depths, for metrics and operators (Service Bus's administration API)."""

    async def depths(self, queues: Sequence[str]) -> dict[str, QueueDepth]:
        """The depth of each of ``queues``; raises ``TransientError`` when unreachable."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
