"""Aggregation: a match's telemetry turned into one delta per player."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from app.domain.model import Match, MatchEvent, PlayerLine
from app.domain.stats import StatDelta, delta_counters

MULTI_KILL_WINDOW_S = 4.0
# Halo's multi-kill ladder: the n-th kill of a chain (each within the window of the one
# before) earns the n-th medal; a chain of three earns double_kill and triple_kill.
MULTI_KILL_MEDALS: tuple[str, ...] = (
    "double_kill",
    "triple_kill",
    "overkill",
    "killtacular",
    "killtrocity",
    "killimanjaro",
    "killtastrophe",
    "killpocalypse",
    "killionaire",
)


def multi_kill_medals(kill_times: Sequence[float]) -> dict[str, int]:
    """Medals earned by one player's kills at ``kill_times`` (seconds, any order)."""
    medals: dict[str, int] = defaultdict(int)
    chain = 0
    previous: float | None = None
    for t in sorted(kill_times):
        chain = chain + 1 if previous is not None and t - previous <= MULTI_KILL_WINDOW_S else 1
        previous = t
        if chain >= 2:
            medals[MULTI_KILL_MEDALS[min(chain - 2, len(MULTI_KILL_MEDALS) - 1)]] += 1
    return dict(medals)


def _from_events(
    events: Sequence[MatchEvent],
) -> tuple[dict[str, dict[str, dict[str, int]]], dict[str, list[float]]]:
    weapons: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    kill_times: dict[str, list[float]] = defaultdict(list)
    for e in events:
        if e.type != "kill" or e.killer is None or e.killer == e.victim:
            continue  # a suicide is no kill
        line = weapons[e.killer].setdefault(e.weapon or "unknown", {"kills": 0, "headshots": 0})
        line["kills"] += 1
        line["headshots"] += int(e.headshot)
        kill_times[e.killer].append(e.t)
    return weapons, kill_times


def aggregate(match: Match) -> dict[str, StatDelta]:
    """One delta per player. With events, per-weapon lines and multi-kill medals come from
    them (other reported medals are kept); without, the reported ones are used as they are."""
    has_events = bool(match.events)
    weapons, kill_times = _from_events(match.events) if has_events else ({}, {})
    return {p.player_id: _delta(match, p, has_events, weapons, kill_times) for p in match.players}


def _delta(
    match: Match,
    player: PlayerLine,
    has_events: bool,
    weapons: dict[str, dict[str, dict[str, int]]],
    kill_times: dict[str, list[float]],
) -> StatDelta:
    if has_events:
        medals = {k: v for k, v in player.medals.items() if k not in MULTI_KILL_MEDALS}
        for name, count in multi_kill_medals(kill_times.get(player.player_id, [])).items():
            medals[name] = medals.get(name, 0) + count
        player_weapons = weapons.get(player.player_id, {})
    else:
        medals = dict(player.medals)
        player_weapons = {
            name: {"kills": w.kills, "headshots": w.headshots} for name, w in player.weapons.items()
        }
    return StatDelta(
        match_id=match.match_id,
        player_id=player.player_id,
        mode=match.mode,
        map=match.map,
        ended_at=match.ended_at,
        outcome=player.outcome,
        team=player.team,
        counters=delta_counters(player.outcome, player.counters),
        medals={k: v for k, v in medals.items() if v},
        weapons={k: v for k, v in player_weapons.items() if v["kills"] or v["headshots"]},
    )
