"""Identifier rules: ids become Table Storage keys, so only a safe alphabet is accepted."""

from __future__ import annotations

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
