"""Identifier rules: ids become Table Storage keys, so only a safe alphabet is accepted."""

from __future__ import annotations

import hashlib
import re

MAX_ID_LENGTH = 64
# Narrower than what Table Storage allows (it forbids / \ # ? and control characters):
# a small alphabet also keeps ids safe in URLs, blob names, row-key prefixes and logs.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"  # as JSON Schema and OpenAPI write it
_ID_RE = re.compile(ID_PATTERN)
ID_RULE = "1-64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit"


def id_problem(value: object) -> str | None:
    """Say what is wrong with ``value`` as an id, or ``None`` when it is valid."""
    if not isinstance(value, str):
        return "must be a string"
    if not value:
        return "must not be empty"
    if len(value) > MAX_ID_LENGTH:
        return f"must be at most {MAX_ID_LENGTH} characters"
    if not _ID_RE.fullmatch(value):
        return f"must be {ID_RULE}"
    return None


def is_valid_id(value: object) -> bool:
    """True when ``value`` is a valid match, player, mode or map id."""
    return id_problem(value) is None


# Service Bus refuses a MessageId longer than this (the SDK raises before sending).
MAX_MESSAGE_ID_LENGTH = 128
_DIGEST_CHARS = 32  # 128 bits of SHA-256: distinct ids stay distinct
_HEAD_CHARS = 60  # the match id, readable, as it starts most ids
_TAIL_CHARS = MAX_MESSAGE_ID_LENGTH - _HEAD_CHARS - _DIGEST_CHARS - 2


def bus_message_id(*parts: str) -> str:
    """``parts`` joined with ``:`` as a bus message id, as it is when it fits Service Bus's
    128 characters; else its head and tail around a SHA-256 digest of the whole. The same
    parts always give the same id, so duplicate detection still drops a repeat."""
    full = ":".join(parts)
    if len(full) <= MAX_MESSAGE_ID_LENGTH:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:_DIGEST_CHARS]
    return f"{full[:_HEAD_CHARS]}~{digest}~{full[-_TAIL_CHARS:]}"
