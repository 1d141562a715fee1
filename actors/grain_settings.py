"""What a grain host is told (``GrainSettings``) and what it counts (``HostCounters``):
shared by its activations and its turns, which each count their own part."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GrainSettings:
    """How a host keeps its grains and retries storage in process."""

    capacity: int = 10_000
    idle_ttl_s: float = 300.0
    conflict_retries: int = 8
    storage_attempts: int = 3
    storage_backoff_s: float = 0.05
    # Updates of one player queued behind a turn are written together by the next one, up
    # to this many matches in one transaction (the Table service takes 100 rows).
    turn_batch: int = 50
    # A grain's first apply may write as if its player were new, with no read first, when
    # most recent first applies were of new players (``NewPlayerGuess``).
    blind_insert: bool = True


@dataclass
class HostCounters:
    """What operators see of one host."""

    activations: int = 0
    deactivations: int = 0
    calls: int = 0  # turns; a turn may run several callers' updates
    batched: int = 0  # updates that ran in a turn together with others
    failures: int = 0
    peak_active: int = 0
    capacity_waits: int = 0  # calls that waited for room (every grain was in a call)
    blind_inserts: int = 0  # first applies tried as a new player's, with no read
    blind_existing: int = 0  # ... of which met an existing record (then read and retried)
    guessed_ratings: int = 0  # rating reads answered with the default rating, unread
    guessed_wrong: int = 0  # guessed changes refused: the player had a rating (re-rated)
