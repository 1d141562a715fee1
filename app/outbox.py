"""A ``MessageBus`` that only collects what a coordinator sends, so that the process that
received the saga message (and holds the bus connection) sends it before it settles."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.ports import BusMessage, MessageBus, OutgoingMessage, ReceivedMessage


@dataclass
class OutboxBus:
    """Collects ``publish`` and ``schedule``; a coordinator never receives."""

    sent: list[OutgoingMessage] = field(default_factory=list)

    async def publish(self, queue: str, message: BusMessage) -> None:
        """Collect a message to send now."""
        self.sent.append(OutgoingMessage(queue, message))

    async def schedule(self, queue: str, message: BusMessage, delay_s: float) -> int:
        """Collect a message to schedule; the sequence number is not known here."""
        self.sent.append(OutgoingMessage(queue, message, delay_s))
        return 0

    async def receive(
        self, queue: str, max_messages: int, max_wait_s: float
    ) -> list[ReceivedMessage]:
        """Not for coordinators."""
        raise NotImplementedError("an outbox does not receive")

    async def complete(self, received: ReceivedMessage) -> None:
        """Not for coordinators."""
        raise NotImplementedError("an outbox does not settle")

    async def abandon(self, received: ReceivedMessage) -> None:
        """Not for coordinators."""
        raise NotImplementedError("an outbox does not settle")

    async def dead_letter(self, received: ReceivedMessage, reason: str, description: str) -> None:
        """Not for coordinators."""
        raise NotImplementedError("an outbox does not settle")

    async def close(self) -> None:
        """Nothing to release."""


async def flush(outbox: list[OutgoingMessage], bus: MessageBus) -> None:
    """Send collected messages on a real bus, in order."""
    for item in outbox:
        if item.delay_s is None:
            await bus.publish(item.queue, item.message)
        else:
            await bus.schedule(item.queue, item.message, item.delay_s)
