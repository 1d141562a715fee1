"""What the broker knows of an AMQP link: its address, its purpose, and the small proton
helpers every handler shares (lock tokens, error conditions, a guard for event handlers)."""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proton import Condition, Endpoint, Link, Message, symbol

from sbemu.store import DEAD_LETTER, MAIN

log = logging.getLogger("sbemu")


@dataclass
class LinkInfo:
    """What one attached link is for."""

    kind: str  # "queue", "cbs" or "management"
    queue: str = ""
    sub: str = MAIN
    outbox: list[Message] = field(default_factory=list)  # replies waiting for credit


def new_tag() -> bytes:
    """A lock token: 16 random bytes that the SDK reads as ``UUID(bytes_le=tag)``. Each byte
    is ASCII because proton hands delivery tags back decoded as UTF-8 text."""
    return bytes(secrets.randbelow(127) + 1 for _ in range(16))


def error(name: str, description: str) -> Condition:
    """An AMQP error with a non-empty info map: the SDK reads the info field of a rejected
    outcome by position, and proton leaves an empty one out."""
    return Condition(name, description, {symbol("broker"): "sbemu"})


def tag_of(dlv: Any) -> bytes:
    """A delivery's tag as bytes (proton may hand it back as text)."""
    tag = dlv.tag
    return tag.encode() if isinstance(tag, str) else bytes(tag)


def guarded(method: Callable[..., None]) -> Callable[..., None]:
    """One bad event must not stop the broker: log it and go on."""

    @functools.wraps(method)
    def run(self: Any, event: Any) -> None:
        try:
            method(self, event)
        except Exception:
            log.exception("error handling %s", method.__name__)

    return run


def parse_address(address: str | None) -> tuple[str, str, str]:
    """``(kind, queue, sub)`` of a link address."""
    path = (address or "").strip()
    if "://" in path:
        path = path.split("://", 1)[1].partition("/")[2]
    path = path.strip("/")
    lower = path.lower()
    if lower == "$cbs":
        return "cbs", "", MAIN
    if lower.endswith("/$management"):
        _, queue, sub = parse_address(lower[: -len("/$management")])
        return "management", queue, sub
    if lower.endswith("/$deadletterqueue"):
        return "queue", lower[: -len("/$deadletterqueue")], DEAD_LETTER
    return "queue", lower, MAIN


def open_links(connection: Any) -> list[Link]:
    """The connection's locally active links."""
    links = []
    link = connection.link_head(Endpoint.LOCAL_ACTIVE)
    while link is not None:
        links.append(link)
        link = link.next(Endpoint.LOCAL_ACTIVE)
    return links
