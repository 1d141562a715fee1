"""Read models the API serves, built from what storage holds (no I/O here)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.application.ports import LogEntry, SagaRecord
from app.domain.aggregation import aggregate
from app.domain.codec import event_to_dict
from app.domain.model import Match
from app.domain.stats import StatDelta


@dataclass(frozen=True, slots=True)
class MatchLines:
    """What a match's page shows of its payload (teams; each player's line with the medals
    and weapons the saga applies): fixed for a payload, so it is built once per payload."""

    teams: list[dict[str, Any]]
    players: list[dict[str, Any]]
    # Each rated player's change, from the saga's logged deltas (``None``: not read yet;
    # they are logged once, by the saga's first save, and never change after it).
    ratings: dict[str, dict[str, Any]] | None = None


def rating_changes(deltas: Mapping[str, StatDelta]) -> dict[str, dict[str, Any]]:
    """The match page's rating changes: each rated player's, from the logged deltas."""
    return {pid: d.rating.public() for pid, d in deltas.items() if d.rating is not None}


def match_lines(match: Match) -> MatchLines:
    """The payload's part of ``GET /v1/matches/{id}`` (the costly part: it aggregates the
    events)."""
    deltas = aggregate(match)  # what the saga applies: medals and weapons from the events
    players = [
        {
            "player_id": line.player_id,
            "team": line.team,
            "outcome": line.outcome.value,
            "counters": dict(line.counters),
            "medals": dict(deltas[line.player_id].medals),
            "weapons": {k: dict(v) for k, v in deltas[line.player_id].weapons.items()},
        }
        for line in match.players
    ]
    return MatchLines(teams(match), players)


def match_view(record: SagaRecord, log: Sequence[LogEntry], lines: MatchLines) -> dict[str, Any]:
    """``GET /v1/matches/{id}``: teams, players' lines with their saga status, the saga
    log as a timeline, and how long consistency took. It shares ``lines``' values (they
    may be cached): serialize it, do not change it."""
    summary, saga = record.summary, record.saga
    ttc = None
    if summary.finished_at is not None:
        ttc = round((summary.finished_at - summary.accepted_at).total_seconds(), 3)
    players = []
    for line in lines.players:
        progress = saga.players.get(line["player_id"])
        players.append(
            {
                **line,
                "status": progress.status.value if progress else "pending",
                "attempts": progress.attempts if progress else 0,
                "error": progress.error if progress else None,
                "rating": (lines.ratings or {}).get(line["player_id"]),
            }
        )
    return {
        "match_id": summary.match_id,
        "state": saga.state.value,
        "mode": summary.mode,
        "map": summary.map,
        "started_at": summary.started_at.isoformat(),
        "ended_at": summary.ended_at.isoformat(),
        "accepted_at": summary.accepted_at.isoformat(),
        "finished_at": summary.finished_at.isoformat() if summary.finished_at else None,
        "time_to_consistency_s": ttc,
        "teams": lines.teams,
        "players": players,
        "log": [
            {
                "seq": e.seq,
                "at": e.at.isoformat(),
                "offset_s": round((e.at - summary.accepted_at).total_seconds(), 3),
                **event_to_dict(e.event),
            }
            for e in log
        ],
    }


def teams(match: Match) -> list[dict[str, Any]]:
    """Each team's players, outcome (its players' most common one) and totals, in the
    order teams first appear; players without a team (free-for-all) are in none."""
    out: dict[str, dict[str, Any]] = {}
    outcomes: dict[str, Counter[str]] = {}
    for line in match.players:
        if line.team is None:
            continue
        team = out.setdefault(
            line.team,
            {"team": line.team, "players": [], "score": 0, "kills": 0, "deaths": 0, "assists": 0},
        )
        team["players"].append(line.player_id)
        for name in ("score", "kills", "deaths", "assists"):
            team[name] += line.counters.get(name, 0)
        outcomes.setdefault(line.team, Counter())[line.outcome.value] += 1
    for name, team in out.items():
        team["outcome"] = outcomes[name].most_common(1)[0][0]
    return list(out.values())
