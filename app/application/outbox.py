"""Outboxes: nothing a saga decides is lost between storage and the bus.

- ``OutboxBus`` collects what a coordinator sends, so that the process that received the
  saga message (and holds the bus connection) sends it before it settles.
- ``OutboxSweeper`` publishes matches that were stored and have not started after a
  grace period (the API crashed, or the bus was down, between storing and publishing;
  or the message is still queued behind a backlog): the saga log keeps an index of them.
  The API does not record its publish (that would be two more writes per match); a
  publish that did happen is harmless to repeat: the ``matches`` queue drops a repeated
  message id, and the saga is idempotent anyway. What the sweeper publishes it records,
  so it publishes a match once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar

from app.application.messages import MATCHES_QUEUE, match_completed
from app.application.periodic import Sweeper
from app.application.ports import BusMessage, MessageBus, OutgoingMessage, ReceivedMessage, SagaLog
from app.application.sagas import utc_now
from app.observability.logs import bind

log = logging.getLogger(__name__)


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

    async def peek(self, queue: str, max_messages: int) -> list[BusMessage]:
        """Not for coordinators."""
        raise NotImplementedError("an outbox does not peek")

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


async def publish_saga_start(sagas: SagaLog, bus: MessageBus, match_id: str) -> None:
    """Publish the message that starts the saga, then drain the match from the outbox."""
    await bus.publish(MATCHES_QUEUE, match_completed(match_id))
    await sagas.mark_published(match_id)


@dataclass
class OutboxSweeper(Sweeper):
    """Every ``interval_s``, publishes matches stored more than ``grace_s`` ago and not
    started (the grace keeps it from repeating the publish of every POST)."""

    sagas: SagaLog
    bus: MessageBus
    interval_s: float = 10.0
    grace_s: float = 30.0
    batch: int = 100
    clock: Callable[[], datetime] = utc_now
    published: int = 0
    name: ClassVar[str] = "outbox sweep"

    async def sweep(self) -> int:
        """One pass; returns how many matches it published."""
        count = 0
        while True:
            cutoff = self.clock() - timedelta(seconds=self.grace_s)
            ids = await self.sagas.unpublished(cutoff, self.batch)
            for match_id in ids:
                with bind(match_id=match_id):
                    await publish_saga_start(self.sagas, self.bus, match_id)
                    log.info("outbox: published match %s, stored but not published", match_id)
            count += len(ids)
            self.published += len(ids)
            if len(ids) < self.batch:
                return count
