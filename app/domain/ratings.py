"""Skill ratings per mode: OpenSkill's Plackett-Luce model (a Weng-Lin Bayesian rating).

Why this model: it rates teams, free-for-all and uneven sides alike (a match is an
ordering of sides, each side a list of players), it updates every player of a 16-player
match in one closed-form step (no iteration, unlike TrueSkill's factor graph), and
openskill is a small, typed, MIT library with no dependencies. It computes; it does no
I/O, which is why the domain may use it.

A match becomes sides and ranks here (``sides``): players grouped by team (a player
without a team is a side alone, as in free-for-all), sides ordered by their outcome (win,
tie, loss, did not finish), then by their total score, equal sides sharing a rank.

A rating change is computed once, by the Game actor that aggregates the match, and kept
as a ``RatingDelta`` (what to add): applying it and reverting it are additions, so a
retried or resumed saga applies the logged delta, never a recomputed one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from openskill.models import PlackettLuce

from app.domain.model import Match, Outcome

_MODEL = PlackettLuce()
DEFAULT_MU: float = _MODEL.mu
DEFAULT_SIGMA: float = _MODEL.sigma
# Best first: a side's outcome is the best of its players' (a player who did not finish
# is rated with the team they left).
_OUTCOME_ORDER = {Outcome.WIN: 0, Outcome.TIE: 1, Outcome.LOSS: 2, Outcome.DNF: 3}


@dataclass(frozen=True, slots=True)
class SkillRating:
    """A player's rating in one mode: the skill estimate ``mu``, its uncertainty
    ``sigma``, and how many matches it has rated."""

    mu: float = DEFAULT_MU
    sigma: float = DEFAULT_SIGMA
    matches: int = 0

    @property
    def skill(self) -> float:
        """The displayed skill: the conservative estimate ``mu - 3 sigma`` (0 for a new
        player), so that a rating climbs as the model grows sure of it."""
        return self.mu - 3 * self.sigma

    def plus(self, delta: RatingDelta) -> SkillRating:
        """This rating with ``delta`` applied."""
        return SkillRating(
            self.mu + delta.mu, self.sigma + delta.sigma, self.matches + delta.matches
        )

    def minus(self, delta: RatingDelta) -> SkillRating:
        """This rating with ``delta`` taken back (a voided match)."""
        return SkillRating(
            self.mu - delta.mu, self.sigma - delta.sigma, self.matches - delta.matches
        )


@dataclass(frozen=True, slots=True)
class RatingDelta:
    """What one match changed of one player's rating in its mode."""

    mu: float
    sigma: float
    matches: int = 1


def sides(match: Match) -> tuple[list[list[str]], list[int]]:
    """The match as OpenSkill rates it: the sides (player ids) and each side's rank (0 is
    first; equal sides share a rank)."""
    teams: dict[str, list[str]] = {}
    for line in match.players:
        key = f"team:{line.team}" if line.team is not None else f"player:{line.player_id}"
        teams.setdefault(key, []).append(line.player_id)
    by_id = {line.player_id: line for line in match.players}

    def standing(members: list[str]) -> tuple[int, int]:
        outcome = min(_OUTCOME_ORDER[by_id[p].outcome] for p in members)
        score = sum(by_id[p].counters.get("score", 0) for p in members)
        return outcome, -score

    ranked = sorted(((standing(m), m) for m in teams.values()), key=lambda pair: pair[0])
    ordered = [members for _, members in ranked]
    ranks: list[int] = []
    for i, (place, _) in enumerate(ranked):
        tied = i > 0 and place == ranked[i - 1][0]
        ranks.append(ranks[-1] if tied else i)
    return ordered, ranks


def rate(
    teams: Sequence[Sequence[str]], ranks: Sequence[int], current: Mapping[str, SkillRating]
) -> dict[str, RatingDelta]:
    """Every player's rating change for one match: ``teams`` of player ids in ``ranks``
    order (0 first), from their ``current`` ratings (a player missing from it is rated
    from the default rating, as a new player is)."""
    if len(teams) != len(ranks):
        raise ValueError("one rank per team")
    if len(teams) < 2:
        raise ValueError("a match needs two sides to be rated")
    before = [[current.get(pid, SkillRating()) for pid in team] for team in teams]
    rated = _MODEL.rate(
        [[_MODEL.rating(mu=r.mu, sigma=r.sigma) for r in team] for team in before],
        ranks=[float(r) for r in ranks],
    )
    deltas: dict[str, RatingDelta] = {}
    for team, olds, news in zip(teams, before, rated, strict=True):
        for pid, old, new in zip(team, olds, news, strict=True):
            deltas[pid] = RatingDelta(new.mu - old.mu, new.sigma - old.sigma)
    return deltas
