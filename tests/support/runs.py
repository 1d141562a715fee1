"""Driving a running service as the scenario tests do: make matches, POST them as several
game servers would, wait for their sagas, and check every record against the payloads."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from devstack.processes import Azurite
from tests.support.client import StatsClient
from tests.support.invariants import board_problems, check_invariants
from tests.support.matches import random_match

if TYPE_CHECKING:
    from tests.e2e.conftest import Scenario


def new_matches(n: int, seed: int, population: int, max_size: int = 32) -> list[dict[str, Any]]:
    """``n`` matches of 1 to ``max_size`` players drawn from ``population`` new players."""
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    players = [f"p-{run}-{i}" for i in range(population)]
    return [
        random_match(rng, f"m-{run}-{i}", players, size=rng.randint(1, min(max_size, population)))
        for i in range(n)
    ]


def post_all(client: StatsClient, matches: list[dict[str, Any]], threads: int = 4) -> None:
    """POST concurrently, as several game servers would; every one must be accepted."""

    def post(match: dict[str, Any]) -> int:
        return client.post_match(match).status_code

    with ThreadPoolExecutor(threads) as pool:
        codes = Counter(pool.map(post, matches))
    assert codes == {202: len(matches)}, codes


def wait_states(client: StatsClient, want: dict[str, str], timeout_s: float) -> dict[str, str]:
    """Poll until each match is in the wanted state; returns the last states seen."""
    deadline = time.monotonic() + timeout_s
    states: dict[str, str] = {}
    pending = dict(want)
    while pending and time.monotonic() < deadline:
        for match_id, state in list(pending.items()):
            states[match_id] = client.get_match(match_id).json().get("state", "?")
            if states[match_id] == state:
                del pending[match_id]
        if pending:
            time.sleep(0.5)
    return {m: states.get(m, "?") for m in want}


def saga_events(client: StatsClient, match_ids: list[str]) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for match_id in match_ids:
        kinds.update(row["type"] for row in client.get_match(match_id).json()["log"])
    return kinds


def verify(s: Scenario, azurite: Azurite, ids: list[str], voided: Sequence[str] = ()) -> None:
    verdict = asyncio.run(
        check_invariants(s.client, azurite.connection_string, s.prefix, ids, voided)
    )
    assert verdict.ok, dict(list(verdict.problems.items())[:10])
    assert verdict.counted_matches == len(ids) - len(voided)
    boards = asyncio.run(board_problems(s.client, azurite.connection_string, s.prefix))
    assert boards == {}, boards
