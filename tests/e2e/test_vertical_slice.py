"""POST matches → GameActor sagas → player grains on Azurite → GET stats, over HTTP."""

from __future__ import annotations

import copy
import random
import uuid

import pytest

from tests.support.client import StatsClient, record_problems
from tests.support.matches import expected_totals, random_match

pytestmark = pytest.mark.e2e


def test_25_random_matches_complete_and_every_record_is_exact(client: StatsClient) -> None:
    rng = random.Random(3)
    run = uuid.uuid4().hex[:6]
    population = [f"p-{run}-{i}" for i in range(40)]
    matches = [random_match(rng, f"m-{run}-{i}", population) for i in range(25)]

    for match in matches:
        response = client.post_match(match)
        assert response.status_code == 202, response.text
        assert response.headers["location"] == f"/v1/matches/{match['match_id']}"

    states = client.wait_finished([m["match_id"] for m in matches], timeout_s=60)
    assert states == {m["match_id"]: "completed" for m in matches}

    expected = expected_totals(matches)
    assert record_problems(client, matches) == {}
    # A player of the run who played nothing has no record.
    unplayed = [p for p in population if p not in expected]
    for player_id in unplayed:
        assert client.stats(player_id).status_code == 404


def test_match_detail_shows_saga_players_and_log(client: StatsClient) -> None:
    rng = random.Random(5)
    run = uuid.uuid4().hex[:6]
    match = random_match(rng, f"m-{run}", [f"p-{run}-{i}" for i in range(4)], size=4)
    assert client.post_match(match).status_code == 202
    assert client.wait_finished([match["match_id"]]) == {match["match_id"]: "completed"}

    detail = client.get_match(match["match_id"]).json()
    assert detail["state"] == "completed"
    assert {p["player_id"] for p in detail["players"]} == {p["player_id"] for p in match["players"]}
    assert all(p["status"] == "applied" and p["attempts"] == 0 for p in detail["players"])
    kinds = [row["type"] for row in detail["log"]]
    assert kinds[0] == "SagaStarted" and kinds[-1] == "SagaCompleted"
    assert kinds.count("PlayerApplied") == 4
    assert detail["time_to_consistency_s"] is not None and detail["time_to_consistency_s"] >= 0


def test_identical_repost_is_counted_once_and_other_body_is_409(client: StatsClient) -> None:
    rng = random.Random(7)
    run = uuid.uuid4().hex[:6]
    match = random_match(rng, f"m-{run}", [f"p-{run}-0", f"p-{run}-1"], size=2)
    assert client.post_match(match).status_code == 202
    again = client.post_match(copy.deepcopy(match))
    assert again.status_code == 200, again.text
    assert client.wait_finished([match["match_id"]]) == {match["match_id"]: "completed"}
    # And once more after completion: still the same match, still counted once.
    assert client.post_match(match).status_code == 200

    changed = copy.deepcopy(match)
    changed["players"][0]["kills"] = changed["players"][0]["kills"] + 1
    changed["players"][0]["weapons"] = {}
    conflict = client.post_match(changed)
    assert conflict.status_code == 409
    assert match["match_id"] in conflict.text

    for line in match["players"]:
        record = client.stats(line["player_id"]).json()
        assert record["matches"] == 1
        assert record["kills"] == line["kills"]


def test_history_is_newest_first_and_pages_with_a_continuation(client: StatsClient) -> None:
    rng = random.Random(11)
    run = uuid.uuid4().hex[:6]
    player = f"p-{run}-hist"
    matches = [random_match(rng, f"m-{run}-{i}", [player], size=1) for i in range(7)]
    for match in matches:
        assert client.post_match(match).status_code == 202
    client.wait_finished([m["match_id"] for m in matches])

    seen: list[str] = []
    continuation = None
    for _ in range(10):
        page = client.history(player, limit=3, continuation=continuation).json()
        seen += [m["match_id"] for m in page["matches"]]
        continuation = page["continuation"]
        if continuation is None:
            break
    newest_first = sorted(matches, key=lambda m: m["ended_at"], reverse=True)
    assert seen == [m["match_id"] for m in newest_first]
    assert client.history(player, limit=3, continuation="not-a-token").status_code == 400


@pytest.mark.parametrize(
    ("path", "bad", "field"),
    [
        (["players", 0, "kills"], -1, "kills"),
        (["players", 0, "shots_hit"], 10**5, "shots_hit"),
        (["match_id"], "bad/id", "match_id"),
        (["ended_at"], "2001-01-01T00:00:00Z", "ended_at"),
    ],
)
def test_invalid_match_is_422_naming_the_field_and_nothing_is_stored(
    client: StatsClient, path: list, bad: object, field: str
) -> None:
    rng = random.Random(13)
    run = uuid.uuid4().hex[:6]
    match = random_match(rng, f"m-{run}", [f"p-{run}-0"], size=1)
    match["players"][0]["shots_fired"] = 10
    target = match
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = bad
    response = client.post_match(match)
    assert response.status_code == 422, response.text
    assert any(field in detail["loc"] for detail in response.json()["detail"])
    if field != "match_id":
        assert client.get_match(match["match_id"]).status_code == 404
    assert client.stats(f"p-{run}-0").status_code == 404


def test_health_and_readiness(client: StatsClient) -> None:
    assert client.http.get("/healthz").json() == {"status": "ok"}
    ready = client.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"storage": "ok", "ray": "ok"}


def test_operator_endpoints_name_bad_input(client: StatsClient) -> None:
    admin = {"Authorization": f"Bearer {client.keys['admin']}"}
    assert client.http.post("/v1/admin/sagas/no-such/redrive", headers=admin).status_code == 404
    assert client.http.post("/v1/matches/no-such/invalidate", headers=admin).status_code == 404
    bad = client.http.get("/v1/admin/sagas", params={"state": "asleep"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "state"]
    bad = client.http.post("/v1/admin/deadletters/replay", json={"queue": "x"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "queue"]
    bad = client.http.post(
        "/v1/matches/m-any/invalidate", json={"reason": "x", "extra": 1}, headers=admin
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "extra"]


def test_a_completed_match_is_listed_and_cannot_be_redriven(client: StatsClient) -> None:
    admin = {"Authorization": f"Bearer {client.keys['admin']}"}
    match = random_match(random.Random(23), f"m-{uuid.uuid4().hex[:6]}", ["p-ops-1", "p-ops-2"])
    assert client.post_match(match).status_code == 202
    mid = match["match_id"]
    assert client.wait_finished([mid]) == {mid: "completed"}
    listed = client.http.get(
        "/v1/admin/sagas", params={"state": "completed", "limit": 1000}, headers=admin
    )
    assert mid in {s["match_id"] for s in listed.json()["sagas"]}
    open_now = client.http.get("/v1/admin/sagas", headers=admin).json()["sagas"]
    assert mid not in {s["match_id"] for s in open_now}
    again = client.http.post(f"/v1/admin/sagas/{mid}/redrive", headers=admin)
    assert again.status_code == 409 and "completed" in again.json()["detail"]
