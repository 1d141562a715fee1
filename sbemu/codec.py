"""AMQP 1.0 message sections, read and rewritten without losing what the sender set.

A stored message is the exact bytes the sender transferred. On delivery the broker only
replaces the header (delivery count) and the message annotations (sequence number,
enqueued time, lock expiry), and for dead letters the application properties; every other
section is copied byte for byte. proton's ``Message`` class would re-encode the body and
keep only one data section, so sections are handled one by one with ``proton.Data``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from proton import Data, Described, symbol, timestamp, ubyte, uint, ulong

if TYPE_CHECKING:
    from sbemu.store import Row

HEADER, DELIVERY_ANNOTATIONS, MESSAGE_ANNOTATIONS = 0x70, 0x71, 0x72
PROPERTIES, APPLICATION_PROPERTIES, DATA, SEQUENCE, VALUE, FOOTER = range(0x73, 0x79)
BODY = {DATA, SEQUENCE, VALUE}


@dataclass
class Sections:
    """One message as its sections: decoded where the broker reads them, raw otherwise."""

    header: list[Any] = field(default_factory=list)
    annotations: dict[Any, Any] = field(default_factory=dict)
    properties: list[Any] = field(default_factory=list)
    application_properties: dict[str, Any] = field(default_factory=dict)
    raw: dict[int, bytes] = field(default_factory=dict)  # properties, footer (verbatim)
    body: list[tuple[int, Any, bytes]] = field(default_factory=list)  # (code, value, raw)

    @property
    def message_id(self) -> str | None:
        """The properties' message-id as text (Service Bus ids are strings)."""
        value = self.properties[0] if self.properties else None
        return None if value is None else str(value)

    @property
    def ttl_ms(self) -> int | None:
        """The header's time to live, if the sender set one."""
        return int(self.header[2]) if len(self.header) > 2 and self.header[2] else None


def _owned(value: Any) -> Any:
    """Copy proton's memoryviews (views into its own buffers, freed with the ``Data``)."""
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, Described):
        return Described(value.descriptor, _owned(value.value))
    if isinstance(value, list):
        return [_owned(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _owned(v) for k, v in value.items()}
    return value


def _read_one(raw: bytes | memoryview) -> tuple[Any, int]:
    data = Data()
    used = data.decode(bytes(raw))
    data.rewind()
    data.next()
    return _owned(data.get_object()), used


def _encode(value: Any) -> bytes:
    data = Data()
    data.put_object(value)
    return bytes(data.encode())


def _plain(value: Any) -> Any:
    """proton's mapping types (AnnotationDict, PropertyDict) as plain dicts."""
    return dict(value) if isinstance(value, Mapping) else value


def parse(raw: bytes | memoryview) -> Sections:
    """Split an encoded message into its sections; raises ``ValueError`` if it is not one."""
    buffer = bytes(raw)
    sections = Sections()
    offset = 0
    while offset < len(buffer):
        try:
            value, used = _read_one(buffer[offset:])
        except Exception as exc:  # proton raises its own DataException
            raise ValueError(f"not an AMQP message at byte {offset}: {exc}") from exc
        if not isinstance(value, Described) or used <= 0:
            raise ValueError(f"not an AMQP message section at byte {offset}")
        section: Any = value  # proton's unions are wider than a section's value can be
        code = int(section.descriptor)
        chunk = buffer[offset : offset + used]
        offset += used
        if code == HEADER:
            sections.header = list(section.value or [])
        elif code == MESSAGE_ANNOTATIONS:
            sections.annotations = _plain(section.value) or {}
        elif code == PROPERTIES:
            sections.properties = list(section.value or [])
            sections.raw[PROPERTIES] = chunk
        elif code == APPLICATION_PROPERTIES:
            sections.application_properties = _plain(value.value) or {}
        elif code in BODY:
            sections.body.append((code, value.value, chunk))
        elif code == FOOTER:
            sections.raw[FOOTER] = chunk
        # delivery annotations are for one hop only: dropped
    return sections


def split_batch(raw: bytes | memoryview) -> list[bytes] | None:
    """The messages of a batch (message format 0x80013700, which proton does not expose),
    recognised by content: every data section is itself a complete encoded message.
    ``None`` when ``raw`` is a single message."""
    sections = parse(raw)
    if not sections.body or any(code != DATA for code, _, _ in sections.body):
        return None
    inner = [bytes(value) for _, value, _ in sections.body]
    for candidate in inner:
        if not candidate.startswith(b"\x00\x53"):
            return None
        try:
            parsed = parse(candidate)
        except ValueError:
            return None
        if not parsed.body:
            return None
    return inner


def render(
    sections: Sections,
    *,
    delivery_count: int,
    annotations: Mapping[str, Any],
    application_properties: Mapping[str, Any] | None = None,
) -> bytes:
    """The message as delivered: a new header and annotations, the rest as received."""
    header = list(sections.header) + [None] * (5 - len(sections.header))
    durable, priority, ttl, first_acquirer = header[:4]
    out = [
        _encode(
            Described(
                ulong(HEADER),
                [
                    bool(durable) if durable is not None else None,
                    ubyte(priority) if priority is not None else None,
                    uint(ttl) if ttl is not None else None,
                    bool(first_acquirer) if first_acquirer is not None else None,
                    uint(delivery_count),
                ],
            )
        )
    ]
    merged: dict[Any, Any] = dict(sections.annotations)
    merged.update({symbol(k): v for k, v in annotations.items()})
    out.append(_encode(Described(ulong(MESSAGE_ANNOTATIONS), merged)))
    if PROPERTIES in sections.raw:
        out.append(sections.raw[PROPERTIES])
    props: dict[Any, Any] = dict(sections.application_properties)
    props.update(application_properties or {})
    if props:
        out.append(_encode(Described(ulong(APPLICATION_PROPERTIES), props)))
    out.extend(chunk for _, _, chunk in sections.body)
    if FOOTER in sections.raw:
        out.append(sections.raw[FOOTER])
    return b"".join(out)


def ms_timestamp(seconds: float) -> timestamp:
    """An AMQP timestamp (ms since the epoch)."""
    return timestamp(int(seconds * 1000))


def render_stored(row: Row, delivery_count: int, locked_until: float | None) -> bytes:
    """A stored message as the SDK expects to receive or peek it."""
    annotations: dict[str, Any] = {
        "x-opt-sequence-number": row.seq,
        "x-opt-enqueued-time": ms_timestamp(row.enqueued_at),
    }
    if locked_until is not None:
        annotations["x-opt-locked-until"] = ms_timestamp(locked_until)
    if row.visible_at > row.enqueued_at:
        annotations["x-opt-scheduled-enqueue-time"] = ms_timestamp(row.visible_at)
    props = None
    if row.dl_reason is not None:
        props = {
            "DeadLetterReason": row.dl_reason,
            "DeadLetterErrorDescription": row.dl_description or "",
        }
    return render(
        parse(row.payload),
        delivery_count=max(delivery_count, 0),
        annotations=annotations,
        application_properties=props,
    )
