"""Queue depths read straight from the broker's SQLite file (read-only, whether or not the
broker runs)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sbemu.store import DEAD_LETTER, DEFERRED, MAIN, connect

DB_NAME = "sbemu.sqlite3"


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """How many messages of a queue are in each condition."""

    active: int = 0
    scheduled: int = 0
    locked: int = 0
    deferred: int = 0
    dead_lettered: int = 0

    def as_dict(self) -> dict[str, int]:
        """For JSON output."""
        return asdict(self)


def queue_depths(data_dir: Path, now: float | None = None) -> dict[str, QueueDepth]:
    """Depths of every queue that holds or held messages."""
    path = data_dir / DB_NAME
    if not path.exists():
        return {}
    now = time.time() if now is None else now
    db = connect(path, readonly=True)
    try:
        rows = db.execute(
            "SELECT queue, "
            "SUM(sub = ? AND state = 0 AND locked_until = 0 AND visible_at <= ?), "
            "SUM(sub = ? AND state = 0 AND visible_at > ?), "
            "SUM(locked_until > 0), "
            "SUM(state = ?), "
            "SUM(sub = ?) "
            "FROM messages GROUP BY queue ORDER BY queue",
            (MAIN, now, MAIN, now, DEFERRED, DEAD_LETTER),
        ).fetchall()
    finally:
        db.close()
    return {q: QueueDepth(*(int(v or 0) for v in values)) for q, *values in rows}


def format_depths(depths: dict[str, QueueDepth]) -> str:
    """A fixed-width table."""
    header = (
        f"{'queue':<24} {'active':>8} {'scheduled':>10} {'locked':>8} {'deferred':>9} {'dead':>8}"
    )
    lines = [header]
    for name, d in depths.items():
        lines.append(
            f"{name:<24} {d.active:>8} {d.scheduled:>10} {d.locked:>8} {d.deferred:>9} "
            f"{d.dead_lettered:>8}"
        )
    if not depths:
        lines.append("(no messages)")
    return "\n".join(lines)
