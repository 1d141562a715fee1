"""The part of Service Bus's administration API (Atom XML over HTTP) that reads queues, for
``ServiceBusAdministrationClient``: ``get_queue``, ``get_queue_runtime_properties``,
``list_queues`` and ``list_queues_runtime_properties``.

It serves plain HTTP on a port of its own, as Microsoft's emulator does (5300). Requests:
``GET /<queue>?api-version=…`` answers the queue's entry; an unknown queue answers an empty
feed with 200, as Service Bus does (the SDK turns it into ``ResourceNotFoundError``).
``GET /$Resources/queues?$skip=N&$top=M`` answers a page of entries, with a ``next`` link
while more follow. Everything else (topics, rules, create, update, delete) answers an
``<Error>`` with 404 or 405 that names what is served. Any key is accepted.

Counts are read from the broker's SQLite file with a read-only connection per request
(WAL lets it read while the broker writes), as Service Bus counts them: active = in the
queue and not scheduled (locked and deferred messages included), scheduled = to become
visible later, dead-letter = in the dead-letter sub-queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape, quoteattr

from sbemu.config import QueueConfig
from sbemu.store import DEAD_LETTER, MAIN, connect

log = logging.getLogger("sbemu.admin")

ATOM = "http://www.w3.org/2005/Atom"
CONNECT = "http://schemas.microsoft.com/netservices/2010/10/servicebus/connect"
COUNTS = "http://schemas.microsoft.com/netservices/2011/06/servicebus"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
# .NET's TimeSpan.MaxValue: what Service Bus answers for "never" (no TTL, no auto-delete).
FOREVER = "P10675199DT2H48M5.4775807S"
DEFAULT_API_VERSION = "2021-05"
MAX_TOP = 100


@dataclass(frozen=True, slots=True)
class Counts:
    """One queue's messages as Service Bus counts them."""

    active: int = 0
    scheduled: int = 0
    dead_letter: int = 0
    size_in_bytes: int = 0


def read_counts(db_path: Path, now: float | None = None) -> dict[str, Counts]:
    """Counts of every queue that holds messages (a queue absent here holds none)."""
    now = time.time() if now is None else now
    db = connect(db_path, readonly=True)
    try:
        rows = db.execute(
            "SELECT queue, SUM(sub = ? AND visible_at <= ?), SUM(sub = ? AND visible_at > ?), "
            "SUM(sub = ?), SUM(LENGTH(payload)) FROM messages GROUP BY queue",
            (MAIN, now, MAIN, now, DEAD_LETTER),
        ).fetchall()
    finally:
        db.close()
    return {q: Counts(*(int(v or 0) for v in values)) for q, *values in rows}


def iso_duration(seconds: float | None) -> str:
    """Seconds as an ISO-8601 duration (``PT1M``, ``P14D``, ``PT0.5S``); ``None``: never."""
    if seconds is None:
        return FOREVER
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{int(hours)}H" if hours else ""
    clock += f"{int(minutes)}M" if minutes else ""
    clock += (f"{secs:.7f}".rstrip("0").rstrip(".") + "S") if secs else ""
    text = "P" + (f"{int(days)}D" if days else "") + (f"T{clock}" if clock else "")
    return "PT0S" if text == "P" else text


def iso_time(at: float) -> str:
    """A UTC timestamp as Service Bus writes them."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def queue_description(
    config: QueueConfig, counts: Counts, created_at: float, accessed_at: float | None
) -> str:
    """A ``<QueueDescription>`` with its ``<CountDetails>``."""
    total = counts.active + counts.scheduled + counts.dead_letter
    return (
        f'<QueueDescription xmlns="{CONNECT}" xmlns:i="{XSI}">'
        f"<LockDuration>{iso_duration(config.lock_duration_s)}</LockDuration>"
        "<MaxSizeInMegabytes>1024</MaxSizeInMegabytes>"
        f"<RequiresDuplicateDetection>{_bool(config.requires_duplicate_detection)}"
        "</RequiresDuplicateDetection>"
        "<RequiresSession>false</RequiresSession>"
        f"<DefaultMessageTimeToLive>{iso_duration(config.ttl_s)}</DefaultMessageTimeToLive>"
        f"<DeadLetteringOnMessageExpiration>{_bool(config.dead_letter_on_expiration)}"
        "</DeadLetteringOnMessageExpiration>"
        f"<DuplicateDetectionHistoryTimeWindow>{iso_duration(config.duplicate_window_s)}"
        "</DuplicateDetectionHistoryTimeWindow>"
        f"<MaxDeliveryCount>{config.max_delivery_count}</MaxDeliveryCount>"
        "<EnableBatchedOperations>true</EnableBatchedOperations>"
        f"<SizeInBytes>{counts.size_in_bytes}</SizeInBytes>"
        f"<MessageCount>{total}</MessageCount>"
        "<IsAnonymousAccessible>false</IsAnonymousAccessible>"
        "<AuthorizationRules/>"
        "<Status>Active</Status>"
        f"<CreatedAt>{iso_time(created_at)}</CreatedAt>"
        f"<UpdatedAt>{iso_time(created_at)}</UpdatedAt>"
        f"<AccessedAt>{iso_time(accessed_at or created_at)}</AccessedAt>"
        "<SupportOrdering>true</SupportOrdering>"
        f'<CountDetails xmlns:d2p1="{COUNTS}">'
        f"<d2p1:ActiveMessageCount>{counts.active}</d2p1:ActiveMessageCount>"
        f"<d2p1:DeadLetterMessageCount>{counts.dead_letter}</d2p1:DeadLetterMessageCount>"
        f"<d2p1:ScheduledMessageCount>{counts.scheduled}</d2p1:ScheduledMessageCount>"
        "<d2p1:TransferMessageCount>0</d2p1:TransferMessageCount>"
        "<d2p1:TransferDeadLetterMessageCount>0</d2p1:TransferDeadLetterMessageCount>"
        "</CountDetails>"
        f"<AutoDeleteOnIdle>{FOREVER}</AutoDeleteOnIdle>"
        "<EnablePartitioning>false</EnablePartitioning>"
        "<EntityAvailabilityStatus>Available</EntityAvailabilityStatus>"
        "<EnableExpress>false</EnableExpress>"
        "<MaxMessageSizeInKilobytes>256</MaxMessageSizeInKilobytes>"
        "</QueueDescription>"
    )


def _entry(base: str, name: str, updated: str, description: str, root: bool) -> str:
    url = f"{base}/{name}"
    namespace = f' xmlns="{ATOM}"' if root else ""
    return (
        f"<entry xml:base={quoteattr(url)}{namespace}>"
        f"<id>{escape(url)}</id>"
        f'<title type="text">{escape(name)}</title>'
        f"<published>{updated}</published><updated>{updated}</updated>"
        "<author><name>sbemu</name></author>"
        f'<link rel="self" href={quoteattr(url)}/>'
        f'<content type="application/xml">{description}</content>'
        "</entry>"
    )


def _feed(title: str, self_url: str, updated: str, entries: str, next_url: str | None) -> str:
    links = f'<link rel="self" href={quoteattr(self_url)}/>'
    if next_url:
        links += f'<link rel="next" href={quoteattr(next_url)}/>'
    return (
        f'<feed xmlns="{ATOM}"><title type="text">{escape(title)}</title>'
        f"<id>{escape(self_url)}</id><updated>{updated}</updated>{links}{entries}</feed>"
    )


def _error(status: int, detail: str) -> str:
    return f"<Error><Code>{status}</Code><Detail>{escape(detail)}</Detail></Error>"


class AdminError(Exception):
    """A request this server refuses: answered as Service Bus's ``<Error>``."""

    def __init__(self, status: HTTPStatus, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class AdminApi:
    """Renders the answers; holds what the broker shares with it (read-only here)."""

    def __init__(
        self,
        queues: Mapping[str, QueueConfig],
        db_path: Path,
        accessed: Mapping[str, float] | None = None,
        created_at: float | None = None,
    ) -> None:
        self.queues = queues
        self.db_path = db_path
        # Written by the broker's thread; single dict reads are atomic under the GIL.
        self.accessed = accessed if accessed is not None else {}
        self.created_at = time.time() if created_at is None else created_at

    def get(self, target: str, host: str) -> tuple[str, str]:
        """``(content type, body)`` for a GET of ``target`` (path and query)."""
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        version = query.get("api-version", DEFAULT_API_VERSION)
        path = unquote(parts.path).strip("/")
        base = f"http://{host}"
        now = iso_time(time.time())
        if path.lower() == "$resources/queues":
            skip, top = _int(query, "$skip", 0), min(_int(query, "$top", MAX_TOP), MAX_TOP)
            names = sorted(self.queues)
            page = names[skip : skip + top]
            counts = read_counts(self.db_path)
            entries = "".join(
                _entry(base, n, now, self._description(n, counts), root=False) for n in page
            )
            listing = f"{base}/$Resources/queues"
            self_url = f"{listing}?$skip={skip}&$top={top}&api-version={version}"
            more = skip + top < len(names)
            next_url = (
                f"{listing}?$skip={skip + top}&$top={top}&api-version={version}" if more else None
            )
            return "application/atom+xml;type=feed;charset=utf-8", _feed(
                "Queues", self_url, now, entries, next_url
            )
        if not path or path.startswith("$") or "/" in path:
            raise AdminError(
                HTTPStatus.NOT_FOUND,
                f"sbemu serves GET /<queue> and GET /$Resources/queues only, not /{path} "
                "(no topics, subscriptions, rules or namespace info).",
            )
        name = path.lower()  # entity names are case-insensitive
        if name not in self.queues:
            # What Service Bus answers for an entity that does not exist: an empty feed.
            return "application/atom+xml;type=feed;charset=utf-8", _feed(
                "Publicly Listed Services", f"{base}/{path}?api-version={version}", now, "", None
            )
        description = self._description(name, read_counts(self.db_path))
        return "application/atom+xml;type=entry;charset=utf-8", (
            '<?xml version="1.0" encoding="utf-8"?>'
            + _entry(base, name, now, description, root=True)
        )

    def _description(self, name: str, counts: Mapping[str, Counts]) -> str:
        return queue_description(
            self.queues[name], counts.get(name, Counts()), self.created_at, self.accessed.get(name)
        )


def _int(query: Mapping[str, str], key: str, default: int) -> int:
    raw = query.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise AdminError(HTTPStatus.BAD_REQUEST, f"{key} must be a whole number >= 0: {raw!r}")
    return value


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the SDK reuses its connections
    server: _Server

    def do_GET(self) -> None:
        try:
            content_type, body = self.server.api.get(self.path, self.headers.get("Host", ""))
            self._send(HTTPStatus.OK, content_type, body)
        except AdminError as exc:
            self._send(exc.status, "application/xml;charset=utf-8", _error(exc.status, str(exc)))
        except Exception as exc:
            log.exception("admin request %s failed", self.path)
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            self._send(status, "application/xml;charset=utf-8", _error(status, repr(exc)))

    def _refuse(self) -> None:
        # Read the body first: an unread body would be taken for the next request.
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status = HTTPStatus.METHOD_NOT_ALLOWED
        detail = (
            f"sbemu's administration API is read-only: {self.command} is not supported. "
            "Queues are declared in its Config.json."
        )
        self._send(status, "application/xml;charset=utf-8", _error(status, detail), allow=True)

    do_PUT = do_DELETE = do_POST = do_PATCH = _refuse

    def _send(self, status: int, content_type: str, body: str, allow: bool = False) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if allow:
            self.send_header("Allow", "GET")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("admin %s: " + format, self.client_address[0], *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: AdminApi) -> None:
        self.api = api
        super().__init__(address, _Handler)


class AdminServer:
    """The administration API on ``host:port`` (0: a free port), served by a thread."""

    def __init__(self, api: AdminApi, host: str, port: int) -> None:
        self._server = _Server((host, port), api)  # bound here: the port is known at once
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sbemu-admin", daemon=True
        )

    def start(self) -> AdminServer:
        """Serve in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
