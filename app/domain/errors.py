"""Domain errors: a small hierarchy whose names state the fact."""

from __future__ import annotations

from dataclasses import dataclass

# An error's text is kept in the saga's summary row (one per player, up to 32 in one 32K
# property), in its log and in a dead letter's properties: it must not grow with whatever
# a failing dependency put in its message.
MAX_ERROR_CHARS = 400


def clip_error(text: str) -> str:
    """``text`` cut to ``MAX_ERROR_CHARS``, saying that it was cut."""
    if len(text) <= MAX_ERROR_CHARS:
        return text
    tail = f"... ({len(text)} characters in all)"
    return text[: MAX_ERROR_CHARS - len(tail)] + tail


class DomainError(Exception):
    """Base class of every error the core and the ports raise on purpose."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field of the input, located by its path."""

    loc: tuple[str | int, ...]
    msg: str
    type: str = "value_error"


class InvalidMatch(DomainError):
    """The posted match breaks one or more rules; nothing may be stored."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        first = errors[0] if errors else None
        where = ".".join(str(p) for p in first.loc) if first else "?"
        super().__init__(f"invalid match: {where}: {first.msg if first else ''}")


class DuplicateMatch(DomainError):
    """A match with this id was already accepted with a different body."""

    def __init__(self, match_id: str) -> None:
        self.match_id = match_id
        super().__init__(f"match {match_id!r} was already accepted with a different body")


class NotFound(DomainError):
    """The named match or player does not exist."""


class ConcurrencyConflict(DomainError):
    """Another writer changed the row since it was read (etag mismatch): reload and retry."""


class TransientError(DomainError):
    """A failure worth retrying later: storage throttled or down, an actor died."""


class StorageUnavailable(TransientError):
    """The storage service did not answer or answered with a retryable error."""


class BusUnavailable(TransientError):
    """The message bus (or its administration API) did not answer, or answered with a
    retryable error."""


class PoolUnavailable(TransientError):
    """The actor pools cannot be reached: this process is not joined to Ray, or no worker
    has created the pools yet."""


class PermanentError(DomainError):
    """A failure that retrying cannot fix (corrupt data, a bug): goes to the operators."""


class MessageRefused(PermanentError):
    """The bus refuses this message as it stands (its id is over 128 characters, or it is
    over 256 KiB): sending it again cannot help."""


class Conflict(DomainError):
    """The request does not fit the current state of what it names (re-drive a finished
    saga, say)."""
