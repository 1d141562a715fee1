"""The broker's durable state in SQLite (WAL): messages of every queue and dead-letter
sub-queue, and the duplicate-detection history.

WAL with ``synchronous=NORMAL`` makes every commit survive the broker process being
killed (the OS has the pages); it does not promise survival of a power cut. The broker
acknowledges a send only after its commit.

A message row is *available* when ``state = ACTIVE``, ``locked_until = 0`` and
``visible_at <= now`` (a future ``visible_at`` is a scheduled message). Locks live in the
row (``locked_until``) so that expiry is one indexed query; their tokens live in the
broker's memory, so a restart releases every lock (the delivery still counts).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ACTIVE, DEFERRED = 0, 2
MAIN, DEAD_LETTER = "", "$deadletterqueue"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    sub TEXT NOT NULL DEFAULT '',
    state INTEGER NOT NULL DEFAULT 0,
    visible_at REAL NOT NULL,
    enqueued_at REAL NOT NULL,
    expires_at REAL,
    locked_until REAL NOT NULL DEFAULT 0,
    deliveries INTEGER NOT NULL DEFAULT 0,
    message_id TEXT,
    dl_reason TEXT,
    dl_description TEXT,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS ready ON messages (queue, sub, state, locked_until, seq);
CREATE INDEX IF NOT EXISTS locks ON messages (locked_until) WHERE locked_until > 0;
CREATE INDEX IF NOT EXISTS expiry ON messages (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS dedup (
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    seen_at REAL NOT NULL,
    PRIMARY KEY (queue, message_id)
);
"""
_COLUMNS = (
    "seq, queue, sub, state, visible_at, enqueued_at, expires_at, locked_until, deliveries, "
    "message_id, dl_reason, dl_description, payload"
)


@dataclass(frozen=True, slots=True)
class Row:
    """One stored message."""

    seq: int
    queue: str
    sub: str
    state: int
    visible_at: float
    enqueued_at: float
    expires_at: float | None
    locked_until: float
    deliveries: int
    message_id: str | None
    dl_reason: str | None
    dl_description: str | None
    payload: bytes


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to enqueue."""

    queue: str
    payload: bytes
    message_id: str | None
    visible_at: float
    expires_at: float | None


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit)."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
    return conn


class Store:
    """All queries of the broker; one instance, used from the reactor thread only."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = connect(path)
        # Lock tokens did not survive the restart: what was locked is available again.
        self._db.execute("UPDATE messages SET locked_until = 0 WHERE locked_until > 0")

    def close(self) -> None:
        """Checkpoint and close."""
        self._db.close()

    def enqueue(
        self, messages: Iterable[NewMessage], now: float, windows: dict[str, float]
    ) -> list[int | None]:
        """Insert in one transaction; a message id seen on its queue within the queue's
        window (``windows``; absent: no duplicate detection) is dropped (``None``)."""
        out: list[int | None] = []
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for m in messages:
                window = windows.get(m.queue)
                if window is not None and m.message_id is not None:
                    seen = db.execute(
                        "SELECT seen_at FROM dedup WHERE queue = ? AND message_id = ?",
                        (m.queue, m.message_id),
                    ).fetchone()
                    if seen is not None and seen[0] > now - window:
                        out.append(None)
                        continue
                    db.execute(
                        "INSERT OR REPLACE INTO dedup (queue, message_id, seen_at) "
                        "VALUES (?, ?, ?)",
                        (m.queue, m.message_id, now),
                    )
                cursor = db.execute(
                    "INSERT INTO messages (queue, visible_at, enqueued_at, expires_at, "
                    "message_id, payload) VALUES (?, ?, ?, ?, ?, ?)",
                    (m.queue, m.visible_at, now, m.expires_at, m.message_id, m.payload),
                )
                out.append(int(cursor.lastrowid or 0))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return out

    def available(self, queue: str, sub: str, now: float, limit: int) -> list[Row]:
        """Oldest available messages."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE queue = ? AND sub = ? AND state = ? "
            "AND locked_until = 0 AND visible_at <= ? ORDER BY seq LIMIT ?",
            (queue, sub, ACTIVE, now, limit),
        ).fetchall()
        return [Row(*r) for r in rows]

    def get(self, seq: int) -> Row | None:
        """One message by sequence number."""
        row = self._db.execute(f"SELECT {_COLUMNS} FROM messages WHERE seq = ?", (seq,)).fetchone()
        return Row(*row) if row else None

    def lock(self, seq: int, until: float) -> int:
        """Lock for a delivery; returns the number of deliveries so far, this one included."""
        self._db.execute(
            "UPDATE messages SET locked_until = ?, deliveries = deliveries + 1 WHERE seq = ?",
            (until, seq),
        )
        row = self._db.execute("SELECT deliveries FROM messages WHERE seq = ?", (seq,)).fetchone()
        return int(row[0]) if row else 0

    def renew(self, seq: int, until: float) -> None:
        """Extend a lock."""
        self._db.execute("UPDATE messages SET locked_until = ? WHERE seq = ?", (until, seq))

    def unlock(self, seq: int, count_delivery: bool = True) -> None:
        """Make available again; a released (never processed) delivery does not count."""
        change = "" if count_delivery else ", deliveries = MAX(deliveries - 1, 0)"
        self._db.execute(f"UPDATE messages SET locked_until = 0{change} WHERE seq = ?", (seq,))

    def delete(self, seq: int) -> None:
        """Remove (complete, receive-and-delete, cancel)."""
        self._db.execute("DELETE FROM messages WHERE seq = ?", (seq,))

    def defer(self, seq: int) -> None:
        """Keep, but never deliver to a plain receive again."""
        self._db.execute(
            "UPDATE messages SET state = ?, locked_until = 0 WHERE seq = ?", (DEFERRED, seq)
        )

    def dead_letter(self, seq: int, reason: str, description: str) -> None:
        """Move to the queue's dead-letter sub-queue."""
        self._db.execute(
            "UPDATE messages SET sub = ?, state = ?, locked_until = 0, visible_at = 0, "
            "expires_at = NULL, dl_reason = ?, dl_description = ? WHERE seq = ?",
            (DEAD_LETTER, ACTIVE, reason, description, seq),
        )

    def expired_locks(self, now: float) -> list[Row]:
        """Locked messages whose lock has run out."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE locked_until > 0 AND locked_until <= ?",
            (now,),
        ).fetchall()
        return [Row(*r) for r in rows]

    def expired_messages(self, now: float) -> list[Row]:
        """Unlocked messages past their time to live."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE expires_at IS NOT NULL AND expires_at <= ? "
            "AND locked_until = 0",
            (now,),
        ).fetchall()
        return [Row(*r) for r in rows]

    def cancel_scheduled(self, queue: str, seqs: Iterable[int], now: float) -> None:
        """Remove scheduled messages that are not visible yet."""
        self._db.executemany(
            "DELETE FROM messages WHERE queue = ? AND seq = ? AND visible_at > ?",
            [(queue, s, now) for s in seqs],
        )

    def peek(self, queue: str, sub: str, from_seq: int, count: int) -> list[Row]:
        """Messages in sequence order from ``from_seq``, locked or not, scheduled included."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE queue = ? AND sub = ? AND seq >= ? "
            "ORDER BY seq LIMIT ?",
            (queue, sub, from_seq, count),
        ).fetchall()
        return [Row(*r) for r in rows]

    def forget_duplicates(self, before: float) -> None:
        """Drop duplicate-detection history older than every window."""
        self._db.execute("DELETE FROM dedup WHERE seen_at < ?", (before,))
