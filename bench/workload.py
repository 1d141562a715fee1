"""The benchmark's load: matches drawn from a playlist mix (1v1, 4v4, 8v8 big team,
16v16, free-for-all of 8), players drawn from a population whose popularity follows a
Zipf law (a few players play a lot, most rarely), with or without raw kill events.

Deterministic for a seed, so that two runs offer the same load."""

from __future__ import annotations

import bisect
import itertools
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

WEAPONS = ("battle_rifle", "dmr", "assault_rifle", "sniper_rifle", "shotgun", "energy_sword")
MAPS = ("haven", "abandon", "adrift", "complex", "exile", "ragnarok")


@dataclass(frozen=True, slots=True)
class Playlist:
    """One kind of match: ``teams`` teams of ``team_size`` (one team each in a
    free-for-all, where ``team_size`` is 1), its share of all matches, and its modes."""

    name: str
    teams: int
    team_size: int
    weight: float
    modes: tuple[str, ...]

    @property
    def players(self) -> int:
        """Players in one match of this playlist."""
        return self.teams * self.team_size


# Roughly Halo 4's matchmaking: team slayer dominates, big team and FFA next.
PLAYLISTS: tuple[Playlist, ...] = (
    Playlist("1v1", 2, 1, 0.10, ("slayer",)),
    Playlist("4v4", 2, 4, 0.40, ("slayer", "ctf", "oddball")),
    Playlist("8v8", 2, 8, 0.20, ("slayer", "ctf", "koth")),
    Playlist("16v16", 2, 16, 0.10, ("slayer", "dominion")),
    Playlist("ffa8", 8, 1, 0.20, ("slayer",)),
)


def mean_players(playlists: Sequence[Playlist] = PLAYLISTS) -> float:
    """Expected players per match of the mix."""
    total = sum(p.weight for p in playlists)
    return sum(p.players * p.weight for p in playlists) / total


class Zipf:
    """Ranks 1..n drawn with probability proportional to ``1 / rank**s``."""

    def __init__(self, n: int, s: float) -> None:
        if n < 1:
            raise ValueError("the population needs at least one player")
        weights = [1.0 / (k**s) for k in range(1, n + 1)]
        self._cumulative = list(itertools.accumulate(weights))

    def draw(self, rng: random.Random) -> int:
        """A rank from 0 (the most popular) to n-1."""
        x = rng.random() * self._cumulative[-1]
        return bisect.bisect_right(self._cumulative, x)


@dataclass(frozen=True, slots=True)
class Workload:
    """What to generate: ``population`` players named ``{prefix}p{rank}`` with Zipf
    exponent ``zipf_s``, matches of the playlist mix, raw events or not."""

    population: int = 5_000
    zipf_s: float = 1.1
    events: bool = False
    prefix: str = "b"
    seed: int = 20261123


class MatchGenerator:
    """An endless, reproducible stream of valid match bodies for ``POST /v1/matches``."""

    def __init__(self, workload: Workload, playlists: Sequence[Playlist] = PLAYLISTS) -> None:
        if workload.population < max(p.players for p in playlists):
            raise ValueError("the population is smaller than the largest match")
        self._w = workload
        self._playlists = tuple(playlists)
        self._weights = [p.weight for p in playlists]
        self._zipf = Zipf(workload.population, workload.zipf_s)
        self._rng = random.Random(workload.seed)
        self._count = 0
        self.played: Counter[str] = Counter()  # matches generated per player
        # Matches ended a little before the run, one second apart, all within the past.
        self._base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)

    def player_id(self, rank: int) -> str:
        """The id of the player of popularity ``rank`` (0: most popular)."""
        return f"{self._w.prefix}p{rank}"

    def _players(self, n: int) -> list[str]:
        chosen: dict[int, None] = {}
        while len(chosen) < n:  # a player plays each match once
            chosen.setdefault(self._zipf.draw(self._rng))
        ids = [self.player_id(r) for r in chosen]
        self.played.update(ids)
        return ids

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        rng = self._rng
        playlist = rng.choices(self._playlists, self._weights)[0]
        self._count += 1
        match_id = f"{self._w.prefix}m{self._w.seed}-{self._count}"
        ids = self._players(playlist.players)
        duration = rng.randint(300, 900)
        ended = self._base + timedelta(seconds=self._count)
        started = ended - timedelta(seconds=duration)
        teams = ["red", "blue"] if playlist.teams == 2 else [f"t{i}" for i in range(8)]
        lines = [
            _line(rng, pid, teams[i // playlist.team_size], duration) for i, pid in enumerate(ids)
        ]
        _outcomes(rng, lines, playlist)
        body: dict[str, Any] = {
            "match_id": match_id,
            "mode": rng.choice(playlist.modes),
            "map": rng.choice(MAPS),
            "started_at": started.isoformat().replace("+00:00", "Z"),
            "ended_at": ended.isoformat().replace("+00:00", "Z"),
            "players": lines,
        }
        if self._w.events:
            body["events"] = _kill_events(rng, lines, duration)
        return body


def _line(rng: random.Random, pid: str, team: str, duration: int) -> dict[str, Any]:
    kills = rng.randint(0, 25)
    headshots = rng.randint(0, kills)
    fired = rng.randint(kills * 3, kills * 3 + 400)
    weapons: dict[str, dict[str, int]] = {}
    left, heads = kills, headshots
    for weapon in rng.sample(WEAPONS, rng.randint(1, 3)):
        k = rng.randint(0, left)
        h = min(heads, k)
        weapons[weapon] = {"kills": k, "headshots": h}
        left, heads = left - k, heads - h
    return {
        "player_id": pid,
        "team": team,
        "outcome": "tie",
        "score": kills * 100 + rng.randint(0, 500),
        "kills": kills,
        "deaths": rng.randint(0, 25),
        "assists": rng.randint(0, 15),
        "headshots": headshots,
        "shots_fired": fired,
        "shots_hit": rng.randint(kills, min(fired, kills + 200)),
        "damage_dealt": rng.randint(0, 15_000),
        "time_played_s": rng.randint(duration // 2, duration),
        "medals": {m: 1 for m in rng.sample(("killjoy", "assist_spree", "headshot"), 1)},
        "weapons": weapons,
    }


def _outcomes(rng: random.Random, lines: list[dict[str, Any]], playlist: Playlist) -> None:
    """One winning team (or player); a rare player quits early."""
    winner = rng.choice(sorted({line["team"] for line in lines}))
    for line in lines:
        line["outcome"] = "win" if line["team"] == winner else "loss"
        if rng.random() < 0.02:
            line["outcome"] = "dnf"


def _kill_events(
    rng: random.Random, lines: list[dict[str, Any]], duration: int
) -> list[dict[str, Any]]:
    """One kill event per reported kill, each with a victim of another team when there is
    one, the weapon and headshot as reported; times spread over the match."""
    ids = [line["player_id"] for line in lines]
    events: list[dict[str, Any]] = []
    for line in lines:
        foes = [p for p, other in zip(ids, lines, strict=True) if other["team"] != line["team"]]
        foes = foes or [p for p in ids if p != line["player_id"]] or ids
        for weapon, w in line["weapons"].items():
            for k in range(w["kills"]):
                events.append(
                    {
                        "t": round(rng.uniform(0, duration), 2),
                        "type": "kill",
                        "killer": line["player_id"],
                        "victim": rng.choice(foes),
                        "weapon": weapon,
                        "headshot": k < w["headshots"],
                    }
                )
    events.sort(key=lambda e: e["t"])
    return events
