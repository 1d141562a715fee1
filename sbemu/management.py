"""Requests on ``<queue>/$management``: schedule, cancel, renew lock, settle by lock token,
peek, receive deferred messages. Replies carry ``statusCode`` (camelCase, unlike CBS)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from proton import Message

from sbemu import codec
from sbemu.store import DEAD_LETTER, MAIN

if TYPE_CHECKING:
    from sbemu.broker import Broker

LOCK_LOST = "com.microsoft:message-lock-lost"
SIZE_EXCEEDED = "amqp:link:message-size-exceeded"
MAX_MESSAGE_BYTES = 256 * 1024  # Service Bus Standard


class ManagementError(Exception):
    """A failed operation, with its AMQP error condition."""

    def __init__(self, condition: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.condition = condition
        self.status = 410 if condition == LOCK_LOST else status


def _get(body: Mapping[Any, Any], key: str) -> Any:
    """Map keys arrive as strings or symbols; both compare equal to ``str``."""
    return body.get(key)


def _tags(tokens: Any) -> list[bytes]:
    """Lock tokens (UUIDs) as delivery tags: the SDK reads a tag as ``UUID(bytes_le=tag)``."""
    out = []
    for token in tokens or []:
        value = token if isinstance(token, uuid.UUID) else uuid.UUID(bytes=bytes(token))
        out.append(value.bytes_le)
    return out


class Management:
    """The operations, over the broker's state."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def handle(self, address: str, request: Message) -> Message:
        """Run one request; every outcome is a reply (errors included)."""
        queue, _, rest = address.partition("/")
        sub = DEAD_LETTER if rest == DEAD_LETTER else MAIN
        properties: Mapping[Any, Any] = request.properties or {}
        operation = str(properties.get("operation", ""))
        body = request.body if isinstance(request.body, Mapping) else {}
        handler = {
            "com.microsoft:renew-lock": self.renew_lock,
            "com.microsoft:schedule-message": self.schedule,
            "com.microsoft:cancel-scheduled-message": self.cancel,
            "com.microsoft:update-disposition": self.update_disposition,
            "com.microsoft:peek-message": self.peek,
            "com.microsoft:receive-by-sequence-number": self.receive_deferred,
        }.get(operation)
        status, description, condition, value = 200, "OK", None, None
        try:
            if handler is None:
                raise ManagementError(
                    "amqp:not-implemented", f"sbemu does not support {operation!r}", 501
                )
            value = handler(queue, sub, body)
            if value is None:
                status, description = 204, "No Content"
        except ManagementError as exc:
            status, description, condition = exc.status, str(exc), exc.condition
        reply: dict[str, Any] = {"statusCode": status, "statusDescription": description}
        if condition:
            reply["errorCondition"] = condition
        return Message(
            correlation_id=request.id,
            properties=reply,
            body=value if value is not None else {},
        )

    def renew_lock(self, queue: str, sub: str, body: Mapping[Any, Any]) -> dict[str, Any]:
        renew = self.broker.locks.renew
        expirations = [codec.ms_timestamp(renew(tag)) for tag in _tags(_get(body, "lock-tokens"))]
        return {"expirations": expirations}

    def schedule(self, queue: str, sub: str, body: Mapping[Any, Any]) -> dict[str, Any]:
        payloads = [bytes(_get(item, "message")) for item in _get(body, "messages") or []]
        # Checked here too: a scheduled message comes through this link, not a sender's.
        for payload in payloads:
            if len(payload) > MAX_MESSAGE_BYTES:
                raise ManagementError(
                    SIZE_EXCEEDED,
                    f"message of {len(payload)} bytes exceeds {MAX_MESSAGE_BYTES}",
                )
        seqs = self.broker.enqueue(queue, payloads)
        # A duplicate was dropped; Service Bus still answers with a number for it.
        return {"sequence-numbers": [s if s is not None else 0 for s in seqs]}

    def cancel(self, queue: str, sub: str, body: Mapping[Any, Any]) -> dict[str, Any]:
        seqs = [int(s) for s in _get(body, "sequence-numbers") or []]
        self.broker.store.cancel_scheduled(queue, seqs, self.broker.clock())
        return {}

    def update_disposition(self, queue: str, sub: str, body: Mapping[Any, Any]) -> dict[str, Any]:
        status = str(_get(body, "disposition-status") or "")
        for tag in _tags(_get(body, "lock-tokens")):
            if status == "completed":
                self.broker.locks.complete(tag)
            elif status == "abandoned":
                self.broker.locks.abandon(tag)
            elif status == "defered":
                self.broker.locks.defer(tag)
            elif status == "suspended":
                self.broker.locks.dead_letter(
                    tag,
                    str(_get(body, "deadletter-reason") or ""),
                    str(_get(body, "deadletter-description") or ""),
                )
            else:
                raise ManagementError("amqp:invalid-field", f"unknown disposition {status!r}")
        return {}

    def peek(self, queue: str, sub: str, body: Mapping[Any, Any]) -> dict[str, Any] | None:
        start = int(_get(body, "from-sequence-number") or 0)
        count = int(_get(body, "message-count") or 1)
        rows = self.broker.store.peek(queue, sub, start, count)
        if not rows:
            return None
        rendered = [codec.render_stored(row, row.deliveries, None) for row in rows]
        return {"messages": [{"message": message} for message in rendered]}

    def receive_deferred(self, queue: str, sub: str, body: Mapping[Any, Any]) -> dict[str, Any]:
        seqs = [int(s) for s in _get(body, "sequence-numbers") or []]
        messages = []
        for seq in seqs:
            tag, payload = self.broker.locks.lock_deferred(queue, sub, seq)
            messages.append({"message": payload, "lock-token": uuid.UUID(bytes_le=tag)})
        if not messages:
            raise ManagementError(
                "com.microsoft:message-not-found", "no deferred message with that number", 404
            )
        return {"messages": messages}
