"""Leaderboards: per (mode, stat), every player's value in a sorted index with exact
ranks, pages that stay stable while the board changes, and standings (rank, percentile).

Pure: a board is rebuilt from records (``board_values``) and kept up to date by
``BoardUpdate``s, which carry absolute values, so one applied twice or late is harmless
(the next one for the player corrects it). Where boards live, and when they are saved,
is the application's (``app/application/boards.py``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sortedcontainers import SortedList

from app.domain.errors import DomainError
from app.domain.stats import OTHER, ServiceRecord, ratios

STATS: tuple[str, ...] = ("rating", "kills", "wins", "kd")
MAX_PAGE_LIMIT = 100
SNAPSHOT_VERSION = 1


class InvalidContinuation(DomainError):
    """A continuation token that this board did not hand out (malformed, or another
    board's)."""


def board_values(record: ServiceRecord, mode: str) -> dict[str, float] | None:
    """The player's values on ``mode``'s boards; ``rating`` only when the mode is rated.
    ``None``: no match counted in the mode (a voided last match takes the player off
    every board of the mode), or ``mode`` is the overflow bucket, which is no mode."""
    counters = record.modes.get(mode)
    if mode == OTHER or not counters or counters.get("matches", 0) <= 0:
        return None
    values: dict[str, float] = {
        "kills": float(counters.get("kills", 0)),
        "wins": float(counters.get("wins", 0)),
        "kd": ratios(counters)["kd"],
    }
    rating = record.ratings.get(mode)
    if rating is not None:
        # Ratings are kept in millionths: rounded there, a skill reads 3.437686, not the
        # 3.4376859999999994 that mu - 3 sigma gives in floating point.
        values["rating"] = round(rating.skill, 6)
    return values


def record_updates(record: ServiceRecord) -> list[BoardUpdate]:
    """One update per mode of ``record`` (the overflow bucket left out): what a rebuild
    from a scan of the records offers."""
    return [
        BoardUpdate(mode, record.player_id, board_values(record, mode))
        for mode in sorted(record.modes)
        if mode != OTHER
    ]


@dataclass(frozen=True, slots=True)
class BoardUpdate:
    """A player's values on the boards of one mode, absolute (``None``: off them all; a
    stat missing from ``values``: off that stat's board)."""

    mode: str
    player_id: str
    values: Mapping[str, float] | None


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a board page."""

    rank: int
    player_id: str
    value: float


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a player stands on one board."""

    rank: int
    percentile: float
    value: float


def _key(value: float, player_id: str) -> tuple[float, str]:
    # Value descending, then player id ascending: ties in a deterministic order.
    return (-value, player_id)


class Board:
    """Every player's value of one stat in one mode, sorted best first.

    Ranks are competition ranks ("1224"): a player's rank is one plus the number of
    players with a strictly greater value, so tied players share a rank; they are listed
    by player id. Every operation is O(log n).
    """

    def __init__(self, stat: str) -> None:
        self.stat = stat
        self._values: dict[str, float] = {}
        self._index: Any = SortedList()

    @property
    def size(self) -> int:
        """How many players are on the board."""
        return len(self._values)

    def players(self) -> Iterable[str]:
        """The players on the board, in no order."""
        return self._values.keys()

    def value(self, player_id: str) -> float | None:
        """The player's value, ``None`` when not on the board."""
        return self._values.get(player_id)

    def set(self, player_id: str, value: float) -> bool:
        """Put the player on the board at ``value``; True when that changed anything."""
        if not math.isfinite(value):
            raise ValueError(f"{self.stat}: a board value must be finite, not {value!r}")
        old = self._values.get(player_id)
        if old == value:
            return False
        if old is not None:
            self._index.remove(_key(old, player_id))
        self._values[player_id] = value
        self._index.add(_key(value, player_id))
        return True

    def remove(self, player_id: str) -> bool:
        """Take the player off the board; True when they were on it."""
        old = self._values.pop(player_id, None)
        if old is None:
            return False
        self._index.remove(_key(old, player_id))
        return True

    def _rank_of(self, value: float) -> int:
        # (-value,) sorts before every (-value, player): the count of greater values.
        return int(self._index.bisect_left((-value,))) + 1

    def _below(self, value: float) -> int:
        # Every key of an equal value sorts before (the next float after -value,).
        return self.size - int(self._index.bisect_left((math.nextafter(-value, math.inf),)))

    def standing(self, player_id: str) -> Standing | None:
        """The player's rank (1 is best) and percentile, ``None`` when not on the board.

        The percentile is the share of the board's players whose value is strictly
        below the player's, from 0 to 100, rounded to one decimal: the best of a board of
        1,000 distinct values is at 99.9, the last at 0.0, and tied players share it.
        """
        value = self._values.get(player_id)
        if value is None:
            return None
        percentile = round(100 * self._below(value) / self.size, 1)
        return Standing(self._rank_of(value), percentile, value)

    def page(self, limit: int, continuation: str | None = None) -> tuple[list[Entry], str | None]:
        """Up to ``limit`` entries from the top, or after the one ``continuation`` names,
        and the token of the next page (``None``: this was the last).

        Keyset paging: a token holds the last (value, player) served, and the next page
        starts strictly after it, wherever that now is. So a player whose value does not
        change while a client pages is served exactly once, in order, however the others
        move; a player whose value changes meanwhile may be served twice or not at all
        (their new place is on the other side of the cursor), as on any live board.
        """
        if not 1 <= limit <= MAX_PAGE_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_LIMIT}")
        start = 0
        if continuation is not None:
            value, player_id = decode_continuation(continuation, self.stat)
            start = int(self._index.bisect_right(_key(value, player_id)))
        keys = list(self._index.islice(start, start + limit))
        entries = list(self._entries(keys))
        more = start + limit < self.size
        last = entries[-1] if entries and more else None
        token = encode_continuation(self.stat, last.value, last.player_id) if last else None
        return entries, token

    def _entries(self, keys: list[tuple[float, str]]) -> Iterator[Entry]:
        previous: float | None = None
        rank = 0
        for negated, player_id in keys:
            value = -negated + 0.0  # 0.0: no "-0.0" on a board
            if value != previous:
                rank = self._rank_of(value)
                previous = value
            yield Entry(rank, player_id, value)

    def ranked(self) -> list[Entry]:
        """The whole board, best first (for checks and snapshots; pages are for reads)."""
        return list(self._entries(list(self._index)))

    def to_snapshot(self) -> list[list[Any]]:
        """JSON-able and compact: ``[[player, value], ...]``, best first."""
        return [[player_id, -negated + 0.0] for negated, player_id in self._index]

    @classmethod
    def from_snapshot(cls, stat: str, snapshot: Iterable[Any]) -> Board:
        """Inverse of ``to_snapshot``."""
        board = cls(stat)
        for player_id, value in snapshot:
            board.set(str(player_id), float(value))
        return board


def encode_continuation(stat: str, value: float, player_id: str) -> str:
    """An opaque, URL-safe token naming the last entry served of ``stat``'s board."""
    raw = json.dumps([stat, value, player_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continuation(token: str, stat: str) -> tuple[float, str]:
    """The (value, player) ``token`` names; ``InvalidContinuation`` when it is not a
    token of ``stat``'s board."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        named, value, player_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidContinuation("not a continuation token of this board") from exc
    if named != stat:
        raise InvalidContinuation(f"a token of the {named!r} board, not of {stat!r}")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not (number and math.isfinite(value) and isinstance(player_id, str) and player_id):
        raise InvalidContinuation("not a continuation token of this board")
    return float(value), player_id


class ModeBoards:
    """The four boards of one mode, kept up to date by ``BoardUpdate``s."""

    def __init__(self, mode: str, boards: Mapping[str, Board] | None = None) -> None:
        self.mode = mode
        self.boards = {stat: (boards or {}).get(stat) or Board(stat) for stat in STATS}

    def apply(self, update: BoardUpdate) -> bool:
        """Set the player's values on every board of the mode (off a board when the
        update has no value for it); True when any board changed."""
        if update.mode != self.mode:
            raise ValueError(f"an update of {update.mode!r} offered to {self.mode!r}")
        values = update.values or {}
        changed = False
        for stat, board in self.boards.items():
            value = values.get(stat)
            if value is None:
                changed |= board.remove(update.player_id)
            else:
                changed |= board.set(update.player_id, value)
        return changed

    def standing(self, player_id: str) -> dict[str, Standing]:
        """The player's standing on each board of the mode they are on."""
        found = {stat: board.standing(player_id) for stat, board in self.boards.items()}
        return {stat: s for stat, s in found.items() if s is not None}

    def players(self) -> set[str]:
        """Every player on any board of the mode."""
        return {p for board in self.boards.values() for p in board.players()}

    def to_snapshot(self) -> dict[str, Any]:
        """JSON-able: the version, the mode, and each board's ``[[player, value], ...]``."""
        return {
            "version": SNAPSHOT_VERSION,
            "mode": self.mode,
            "boards": {stat: board.to_snapshot() for stat, board in self.boards.items()},
        }

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any]) -> ModeBoards:
        """Inverse of ``to_snapshot``."""
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unknown board snapshot version {snapshot.get('version')!r}")
        saved = snapshot["boards"]
        boards = {s: Board.from_snapshot(s, saved[s]) for s in STATS if s in saved}
        return cls(str(snapshot["mode"]), boards)
