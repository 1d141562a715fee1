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

Ratings are kept in fixed point: every value is a whole number of millionths (``_q``), so
adding and taking back deltas is exact and order-free; a player's rating is exactly the
start rating plus the deltas of the matches that count, which the invariant checker
tests with ``==``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openskill.models import PlackettLuce

from app.domain.model import Match, Outcome

_MODEL = PlackettLuce()
_PLACES = 6  # millionths: far below what a displayed rating shows, far above float noise


def _q(value: float) -> float:
    """``value`` as a whole number of millionths (the nearest float to that decimal)."""
    return round(value, _PLACES)


DEFAULT_MU: float = _q(_MODEL.mu)
DEFAULT_SIGMA: float = _q(_MODEL.sigma)
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
            _q(self.mu + delta.mu), _q(self.sigma + delta.sigma), self.matches + delta.matches
        )

    def minus(self, delta: RatingDelta) -> SkillRating:
        """This rating with ``delta`` taken back (a voided match)."""
        return SkillRating(
            _q(self.mu - delta.mu), _q(self.sigma - delta.sigma), self.matches - delta.matches
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the record's and the saga log's)."""
        return {"mu": self.mu, "sigma": self.sigma, "matches": self.matches}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SkillRating:
        """Inverse of ``to_dict``."""
        return cls(float(data["mu"]), float(data["sigma"]), int(data["matches"]))

    def public(self) -> dict[str, Any]:
        """What stats sites show: the displayed skill, then the model's numbers."""
        return {
            "skill": round(self.skill, 2),
            "mu": round(self.mu, 4),
            "sigma": round(self.sigma, 4),
            "matches": self.matches,
        }


@dataclass(frozen=True, slots=True)
class RatingDelta:
    """What one match changed of one player's rating in its mode."""

    mu: float
    sigma: float
    matches: int = 1


@dataclass(frozen=True, slots=True)
class RatingChange:
    """One player's rating in a match: the rating the Game actor read before rating it, and
    the delta it computed (logged in the saga, applied and reverted by the grain).

    ``guessed``: the rating was not read (the player's shard guessed they are new, so
    ``before`` is the default rating); the grain refuses the change if the player turns
    out to have had a rating in the mode, and the saga rates them again (``rerate``)."""

    before: SkillRating
    delta: RatingDelta
    guessed: bool = False

    @property
    def after(self) -> SkillRating:
        """``before`` with the delta: the rating right after the match, had no other match
        of the player landed in between (concurrent matches add their own deltas)."""
        return self.before.plus(self.delta)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, inside the delta's."""
        # Omitted when False: rows logged before guesses existed read the same.
        guessed: dict[str, Any] = {"guessed": True} if self.guessed else {}
        return {
            **guessed,
            "before": self.before.to_dict(),
            "mu": self.delta.mu,
            "sigma": self.delta.sigma,
            "matches": self.delta.matches,
        }

    def public(self) -> dict[str, Any]:
        """What pages show of it: the ratings before and after, and the skill it moved."""
        before, after = self.before, self.after
        return {
            "before": before.public(),
            "after": after.public(),
            "skill_change": round(after.skill - before.skill, 2),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RatingChange:
        """Inverse of ``to_dict``."""
        delta = RatingDelta(float(data["mu"]), float(data["sigma"]), int(data["matches"]))
        return cls(SkillRating.from_dict(data["before"]), delta, bool(data.get("guessed")))


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
            deltas[pid] = RatingDelta(_q(new.mu - old.mu), _q(new.sigma - old.sigma))
    return deltas


def is_rated(match: Match) -> bool:
    """Whether the match rates anyone: it needs two sides (a match of one team, or of one
    player, has no one to rank against)."""
    teams, _ = sides(match)
    return len(teams) >= 2


def rate_match(
    match: Match,
    current: Mapping[str, SkillRating],
    unreadable: Collection[str] = (),
    guessed: Collection[str] = (),
) -> dict[str, RatingChange]:
    """Every rated player's change in ``match`` (empty for a match of one side, which
    rates nobody). A player in ``unreadable`` (the Game actor could not read their rating)
    is rated from the default rating, so that the others' changes stay sensible, and gets
    no change of their own: applying a delta computed from a rating they may not have
    would move it by a wrong amount. A player in ``guessed`` (not read: guessed new) is
    rated from the default rating too, and their change is marked ``guessed``."""
    teams, ranks = sides(match)
    if len(teams) < 2:
        return {}
    skip = set(unreadable) | set(guessed)
    known = {pid: r for pid, r in current.items() if pid not in skip}
    deltas = rate(teams, ranks, known)
    return {
        pid: RatingChange(known.get(pid, SkillRating()), delta, pid in guessed)
        for pid, delta in deltas.items()
        if pid not in unreadable
    }


def rerate(
    match: Match,
    logged: Mapping[str, RatingChange | None],
    player_id: str,
    rating: SkillRating,
) -> RatingChange:
    """The change of ``player_id`` in ``match`` computed again from ``rating``, the one
    they have: their logged change was computed from a guessed (default) rating, and they
    were not new. The others are taken at the ratings they were rated from (their logged
    ``before``; the default rating for a player logged without a change, as
    ``rate_match`` rated them), and their changes stay as logged: they were rated against
    this player's default rating, as against a player whose rating could not be read."""
    teams, ranks = sides(match)
    current = {pid: change.before for pid, change in logged.items() if change is not None}
    current[player_id] = rating
    return RatingChange(rating, rate(teams, ranks, current)[player_id])
