"""Logging of every statsaga process: one JSON object per line (or readable text), with
the context bound to the work at hand (``match_id``, ``player_id``, ``message_id``) on
every line logged while doing it, and the secrets it is given never written out.

Context lives in a ``ContextVar``: ``bind`` nests and merges, and each asyncio task runs
in a copy of its creator's context, so concurrent sagas never see each other's fields.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal, TextIO

LogFormat = Literal["json", "text"]
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
REDACTED = "[redacted]"
# Shorter "secrets" are not replaced: the local broker's key is "local", and replacing
# every "local" would garble lines while protecting nothing (such a value is guessable).
MIN_SECRET_LENGTH = 8
# Loggers of libraries that keep handlers of their own; their records go through ours.
ADOPTED_LOGGERS = ("ray", "uvicorn", "uvicorn.error", "uvicorn.access")
CORE_FIELDS = ("ts", "level", "logger", "msg", "process", "exc")
# Attributes every LogRecord has; anything else on a record came from ``extra=`` or a bind.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}
# Set on records by libraries for their own formatters (uvicorn's colours).
_LIBRARY_ATTRS = frozenset({"color_message"})
_EMPTY: Mapping[str, object] = MappingProxyType({})
_context: ContextVar[Mapping[str, object]] = ContextVar("statsaga_log_context", default=_EMPTY)


@contextmanager
def bind(**fields: object) -> Iterator[None]:
    """Add ``fields`` (``None`` ones skipped) to every line logged inside the block."""
    clashing = sorted(set(fields) & (_RECORD_ATTRS | set(CORE_FIELDS)))
    if clashing:
        # A record attribute overwritten by context would corrupt the line, not label it.
        raise ValueError(f"cannot bind reserved log field(s): {', '.join(clashing)}")
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _context.reset(token)


def bound() -> dict[str, object]:
    """The fields bound in the current context."""
    return dict(_context.get())


class ContextFilter(logging.Filter):
    """Stamps the bound fields onto each record (``extra=`` given at the call wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the context; never drops a record."""
        for key, value in _context.get().items():
            if key not in record.__dict__:
                setattr(record, key, value)
        return True


class _Redactor:
    """Replaces each secret wherever it appears in a finished line."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first: a secret containing another is replaced whole.
        found = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, found))) if found else None

    def __call__(self, line: str) -> str:
        return line if self._pattern is None else self._pattern.sub(REDACTED, line)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """What the record carries beyond the standard attributes: bound context and extras."""
    return {
        k: v
        for k, v in record.__dict__.items()
        if k not in _RECORD_ATTRS and k not in _LIBRARY_ATTRS and not k.startswith("_")
    }


def _timestamp(record: logging.LogRecord) -> str:
    when = datetime.fromtimestamp(record.created, UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts level logger msg``, context and extras, ``process``
    (role/pid), and ``exc`` when an exception is attached."""

    def __init__(self, role: str, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.role = role
        self._redact = _Redactor(secrets)

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _fields(record).items():
            line.setdefault(key, value)  # the core fields above are never overridden
        line["process"] = f"{self.role}/{record.process}"
        exc = _exception_text(self, record)
        if exc:
            line["exc"] = exc
        # default=str: a field that is not JSON (a datetime, an enum) must not lose the line.
        return self._redact(json.dumps(line, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """A readable line: ``ts level process logger: msg k=v ...`` (then any traceback)."""

    def __init__(self, role: str, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.role = role
        self._redact = _Redactor(secrets)

    def format(self, record: logging.LogRecord) -> str:
        """The record as text, bound fields after the message."""
        fields = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = (
            f"{_timestamp(record)} {record.levelname:<7} {self.role}/{record.process} "
            f"{record.name}: {record.getMessage()}"
        )
        line = f"{line}  {fields}" if fields else line
        exc = _exception_text(self, record)
        return self._redact(f"{line}\n{exc}" if exc else line)


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    parts = []
    if record.exc_info:
        parts.append(formatter.formatException(record.exc_info))
    if record.stack_info:
        parts.append(formatter.formatStack(record.stack_info))
    return "\n".join(parts)


class _StatsagaHandler(logging.StreamHandler[TextIO]):
    """Ours: ``configure_logging`` replaces it rather than adding a second one."""


def configure_logging(
    level: str = "INFO",
    fmt: LogFormat = "json",
    role: str = "statsaga",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every logger's records, at ``level`` and up, to ``stream`` (stderr) in ``fmt``,
    with the bound context, ``secrets`` redacted. Called again, it replaces its handler."""
    handler = _StatsagaHandler(stream or sys.stderr)
    formatter = JsonFormatter if fmt == "json" else TextFormatter
    handler.setFormatter(formatter(role, secrets))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StatsagaHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    adopt_loggers(*ADOPTED_LOGGERS)
    # The Azure SDKs log every HTTP request and AMQP frame at INFO: debugging detail here.
    quiet = root.level > logging.DEBUG
    logging.getLogger("azure").setLevel(logging.WARNING if quiet else logging.NOTSET)
    return handler


def adopt_loggers(*names: str) -> None:
    """Route these loggers' records through the root's handlers (ours) instead of the
    handlers their library installed; call again after importing a library that installs
    them on import."""
    for name in names:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


def connection_secrets(connection_string: str) -> list[str]:
    """The key values in an Azure connection string (``AccountKey``, ``SharedAccessKey``,
    ``SharedAccessSignature``), to redact from logs."""
    secrets = []
    for part in connection_string.split(";"):
        name, sep, value = part.partition("=")
        if sep and value and name.strip().lower() in _SECRET_PARTS:
            secrets.append(value)
    return secrets


_SECRET_PARTS = frozenset({"accountkey", "sharedaccesskey", "sharedaccesssignature"})
