"""The invariant checker of the chaos tests: every player's served record equals the
totals recomputed from the *archived* payloads of the matches that count (completed, not
compensated), read straight from storage, independently of the code that summed them;
and each player's rating in each mode equals the start rating plus the rating deltas the
sagas of those matches logged (exactly: ratings are kept in fixed point)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.domain.leaderboards import STATS, board_values
from app.domain.ratings import SkillRating
from app.domain.saga import SagaState
from app.domain.stats import OTHER, ServiceRecord, StatDelta
from storage.tables import open_table_storage
from tests.support.client import StatsClient
from tests.support.matches import expected_totals, mismatches


@dataclass
class Verdict:
    """What the checker found; ``ok`` when nothing is wrong."""

    states: dict[str, str] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)
    players_checked: int = 0
    counted_matches: int = 0

    @property
    def ok(self) -> bool:
        """Every match finished as expected and every record is exact."""
        return not self.problems


async def check_invariants(
    client: StatsClient,
    connection_string: str,
    prefix: str,
    match_ids: Sequence[str],
    voided: Sequence[str] = (),
) -> Verdict:
    """Check ``match_ids`` (the ``voided`` ones must end compensated, the others completed)
    and the records of every player in them."""
    verdict = Verdict()
    storage = await open_table_storage(connection_string, prefix)
    counted: list[dict[str, Any]] = []
    players: set[str] = set()
    ratings: dict[str, dict[str, SkillRating]] = {}
    try:
        for match_id in match_ids:
            record = await storage.sagas.load(match_id)
            state = record.saga.state
            verdict.states[match_id] = state.value
            want = SagaState.COMPENSATED if match_id in voided else SagaState.COMPLETED
            if state is not want:
                verdict.problems[match_id] = [f"saga is {state.value}, expected {want.value}"]
            payload = await storage.archive.get(match_id, record.summary.payload_hash)
            players.update(line["player_id"] for line in payload["players"])
            if state is SagaState.COMPLETED:
                counted.append(payload)
                _add_logged_ratings(ratings, await storage.sagas.deltas(match_id))
            kinds = [type(e.event).__name__ for e in await storage.sagas.log(match_id)]
            for once in ("SagaStarted", "SagaCompleted", "SagaCompensated"):
                if kinds.count(once) > 1:
                    verdict.problems.setdefault(match_id, []).append(f"{once} logged twice")
    finally:
        await storage.close()
    totals = expected_totals(counted)
    verdict.counted_matches = len(counted)
    for player_id in sorted(players):
        response = _stats(client, player_id)
        if player_id not in totals:  # every match of theirs was voided
            if response.status_code != 404 and response.json().get("matches", 0) != 0:
                verdict.problems[player_id] = [f"voided player still counts: {response.text}"]
            continue
        if response.status_code != 200:
            verdict.problems[player_id] = [f"GET stats answered {response.status_code}"]
            continue
        bad = mismatches(response.json(), totals[player_id])
        logged = {mode: r.public() for mode, r in sorted(ratings.get(player_id, {}).items())}
        if response.json().get("ratings") != logged:
            bad.append(f"ratings {response.json().get('ratings')} != logged {logged}")
        if bad:
            verdict.problems[player_id] = bad
    verdict.players_checked = len(players)
    return verdict


def _add_logged_ratings(
    ratings: dict[str, dict[str, SkillRating]], deltas: Mapping[str, StatDelta]
) -> None:
    """Add one counted match's logged rating deltas to each player's expected ratings."""
    for pid, delta in deltas.items():
        if delta.rating is not None:
            held = ratings.setdefault(pid, {}).get(delta.mode, SkillRating())
            ratings[pid][delta.mode] = held.plus(delta.rating.delta)


def _stats(client: StatsClient, player_id: str, attempts: int = 20) -> httpx.Response:
    """GET the record as a well-behaved client does: a 503 (storage faults are injected
    into the grains' reads too) is tried again after its ``Retry-After``."""
    for _ in range(attempts - 1):
        response = client.stats(player_id)
        if response.status_code != 503:
            return response
        time.sleep(min(float(response.headers.get("retry-after", "1")), 1.0))
    return client.stats(player_id)


async def board_problems(
    client: StatsClient, connection_string: str, prefix: str, timeout_s: float = 30.0
) -> dict[str, list[str]]:
    """After quiescence: every board of every mode the records hold equals the board
    recomputed from the records in storage (values from ``board_values``; order and ranks
    recomputed here: value descending, ties by player id sharing a rank). The boards
    follow the records within seconds, so a board is read again until it matches or
    ``timeout_s`` passes."""
    storage = await open_table_storage(connection_string, prefix)
    try:
        records = [record async for record in storage.players.records()]
    finally:
        await storage.close()
    modes = sorted({m for r in records for m in r.modes if m != OTHER})
    want = {(m, stat): _recomputed(records, m, stat) for m in modes for stat in STATS}
    deadline = time.monotonic() + timeout_s
    while True:
        got = {key: _served_board(client, *key) for key in want}
        wrong = [key for key in want if got[key] != want[key]]
        if not wrong or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    return {f"board {m}/{stat}": _board_diff(got[(m, stat)], want[(m, stat)]) for m, stat in wrong}


def _board_diff(
    served: list[tuple[int, str, float]], recomputed: list[tuple[int, str, float]]
) -> list[str]:
    """The first rows where a served board and its recomputation differ."""
    diff = [f"served {len(served)} rows, recomputed {len(recomputed)}"]
    for i, (a, b) in enumerate(zip(served, recomputed, strict=False)):
        if a != b:
            diff.append(f"row {i + 1}: served {a}, recomputed {b}")
        if len(diff) > 5:
            break
    return diff


def _recomputed(
    records: Sequence[ServiceRecord], mode: str, stat: str
) -> list[tuple[int, str, float]]:
    values = []
    for record in records:
        found = board_values(record, mode)
        if found is not None and stat in found:
            values.append((record.player_id, found[stat]))
    values.sort(key=lambda pv: (-pv[1], pv[0]))
    rows: list[tuple[int, str, float]] = []
    for i, (player, value) in enumerate(values):
        rank = rows[-1][0] if rows and rows[-1][2] == value else i + 1
        rows.append((rank, player, value))
    return rows


def _served_board(client: StatsClient, mode: str, stat: str) -> list[tuple[int, str, float]]:
    """The whole board as the API serves it, page after page."""
    rows: list[tuple[int, str, float]] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"stat": stat, "limit": 100}
        if token:
            params["continuation"] = token
        answer = client.http.get(
            f"/v1/leaderboards/{mode}", params=params, headers=client._auth("read")
        )
        answer.raise_for_status()
        body = answer.json()
        rows += [(e["rank"], e["player_id"], e["value"]) for e in body["entries"]]
        token = body.get("continuation")
        if not token:
            return rows
