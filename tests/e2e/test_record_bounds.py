"""Input that grows a record cannot break a player: the real service, Azurite and Ray.

Two posts whose kill events named 300 new weapons each used to leave the player stuck for
good (``400 PropertyValueTooLarge`` on the record row). Now such a post is refused, and
posts that each stay within a line's bounds but together name far more than a record
holds all complete, with what counts exact."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.domain.stats import MAX_RECORD_MEDALS, MAX_RECORD_MODES, MAX_RECORD_WEAPONS, OTHER
from tests.support.client import StatsClient

pytestmark = pytest.mark.e2e


def _match(match_id: str, n: int, players: list[str], **extra: Any) -> dict[str, Any]:
    ended = datetime.now(UTC) - timedelta(hours=2) + timedelta(minutes=n)
    return {
        "match_id": match_id,
        "mode": f"mode{n:02d}".ljust(64, "x"),
        "map": "haven",
        "started_at": (ended - timedelta(minutes=10)).isoformat().replace("+00:00", "Z"),
        "ended_at": ended.isoformat().replace("+00:00", "Z"),
        "players": [{"player_id": p, "outcome": "win", "kills": 0} for p in players],
        **extra,
    }


def test_a_post_whose_kills_name_300_weapons_is_refused_naming_the_event(
    client: StatsClient,
) -> None:
    run = uuid.uuid4().hex[:6]
    killer, victim = f"p-{run}-k", f"p-{run}-v"
    for n in range(2):
        match = _match(f"m-{run}-{n}", n, [killer, victim])
        match["players"][0]["kills"] = 300
        match["events"] = [
            {"t": i, "type": "kill", "killer": killer, "victim": victim, "weapon": f"w{n}-{i}"}
            for i in range(300)
        ]
        response = client.post_match(match)
        assert response.status_code == 422, response.text
        locs = [e["loc"] for e in response.json()["detail"]]
        assert locs[0] == ["body", "events", 64, "weapon"], locs
        assert client.get_match(match["match_id"]).status_code == 404  # nothing stored


def test_names_flooding_in_over_many_matches_stay_bounded_and_exact(
    client: StatsClient,
) -> None:
    run = uuid.uuid4().hex[:6]
    player, other = f"p-{run}-1", f"p-{run}-2"
    matches = []
    for n in range(MAX_RECORD_MODES + 5):  # a new mode, 64 new weapons and medals each
        match = _match(f"m-{run}-{n:02d}", n, [player, other])
        line = match["players"][0]
        line["kills"] = 64 * 2
        line["weapons"] = {
            f"{n:02d}w{i:02d}".ljust(64, "w"): {"kills": 2, "headshots": 1} for i in range(64)
        }
        line["medals"] = {f"{n:02d}m{i:02d}".ljust(64, "m"): 1 for i in range(64)}
        assert client.post_match(match).status_code == 202
        matches.append(match)
    states = client.wait_finished([m["match_id"] for m in matches], timeout_s=120)
    assert set(states.values()) == {"completed"}, states

    voided = matches[-1]["match_id"]  # a void subtracts what the record took for it
    admin = {"Authorization": f"Bearer {client.keys['admin']}"}
    assert client.http.post(f"/v1/matches/{voided}/invalidate", headers=admin).status_code == 202
    deadline = time.monotonic() + 60
    while client.get_match(voided).json()["state"] != "compensated":
        assert time.monotonic() < deadline, client.get_match(voided).json()
        time.sleep(0.2)
    kept = matches[:-1]

    response = client.stats(player)
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["matches"] == record["wins"] == len(kept)
    assert record["kills"] == 128 * len(kept)
    assert sum(w["kills"] for w in record["weapons"].values()) == 128 * len(kept)
    assert sum(record["medals"].values()) == 64 * len(kept)
    assert sum(m["matches"] for m in record["modes"].values()) == len(kept)
    assert len(record["weapons"]) == MAX_RECORD_WEAPONS + 1 and OTHER in record["weapons"]
    assert len(record["medals"]) == MAX_RECORD_MEDALS + 1 and OTHER in record["medals"]
    assert len(record["modes"]) == MAX_RECORD_MODES + 1
    assert record["modes"][OTHER]["matches"] == len(kept) - MAX_RECORD_MODES
    # Each name kept is exact (each was named in one match only).
    named = [line for name, line in record["weapons"].items() if name != OTHER]
    assert all(line == {"kills": 2, "headshots": 1} for line in named)
    assert client.stats(other).json()["matches"] == len(kept)
    # Every match is in the history, the voided one marked void, with its real mode.
    lines: dict[str, Any] = {}
    token = None
    while True:
        page = client.history(player, limit=25, continuation=token)
        assert page.status_code == 200, page.text
        lines.update((line["match_id"], line) for line in page.json()["matches"])
        if not (token := page.json()["continuation"]):
            break
    assert set(lines) == {m["match_id"] for m in matches}
    assert lines[voided]["void"] and lines[voided]["mode"] == matches[-1]["mode"]
