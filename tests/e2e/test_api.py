"""The HTTP surface as its users meet it: keys and roles, public reads, the ingest rate
limit, body and field limits, 404s, conditional reads, per-mode records, match detail,
history paging under concurrent inserts, and the OpenAPI document.

Most tests use the session's ``statsaga run``; ``limited`` is a second API process over
the same storage and bus (so the session's worker runs its sagas) with public reads, a
low ingest rate and a small body limit."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.processes import free_port
from tests.e2e.conftest import KEYS, Service
from tests.support.client import StatsClient
from tests.support.matches import random_match

pytestmark = pytest.mark.e2e
RATE, BURST, BODY_LIMIT = 1.0, 3, 4096


def _run() -> str:
    return uuid.uuid4().hex[:6]


def _auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role]}"}


@pytest.fixture(scope="module")
def limited(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StatsClient]:
    """``statsaga api`` (no Ray: its stats reads answer 503) beside the session service."""
    port = free_port()
    env = {
        **service.env,
        "STATSAGA_PORT": str(port),
        "STATSAGA_PUBLIC_READS": "true",
        "STATSAGA_INGEST_RATE_PER_S": str(RATE),
        "STATSAGA_INGEST_BURST": str(BURST),
        "STATSAGA_MAX_BODY_BYTES": str(BODY_LIMIT),
    }
    log: Path = tmp_path_factory.mktemp("limited") / "api.log"
    api = Service("api", env, log, f"http://127.0.0.1:{port}").start()
    client = StatsClient(api.base_url, KEYS)
    try:
        api.wait_ready(60)
        yield client
    finally:
        client.http.close()
        api.stop()


# ---- keys and roles ----------------------------------------------------------------------

# (method, path, body, the role it needs); admin keys may do everything.
ENDPOINTS: list[tuple[str, str, Any, str]] = [
    ("POST", "/v1/matches", {}, "ingest"),
    ("GET", "/v1/matches/m-any", None, "read"),
    ("GET", "/v1/players/p-any/stats", None, "read"),
    ("GET", "/v1/players/p-any/matches", None, "read"),
    ("GET", "/v1/leaderboards/slayer", None, "read"),
    ("POST", "/v1/matches/m-any/invalidate", {}, "admin"),
    ("GET", "/v1/admin/sagas", None, "admin"),
    ("POST", "/v1/admin/sagas/m-any/redrive", None, "admin"),
    ("GET", "/v1/admin/deadletters", None, "admin"),
    ("POST", "/v1/admin/deadletters/replay", {"message_ids": []}, "admin"),
    ("GET", "/v1/admin/pools", None, "admin"),
    ("PUT", "/v1/admin/pools/game", {"size": 0}, "admin"),
]


@pytest.mark.parametrize(("method", "path", "body", "needs"), ENDPOINTS)
def test_each_endpoint_needs_a_key_of_its_role(
    client: StatsClient, method: str, path: str, body: Any, needs: str
) -> None:
    http = client.http
    missing = http.request(method, path, json=body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "Bearer" in missing.json()["detail"]
    unknown = http.request(method, path, json=body, headers={"Authorization": "Bearer nope"})
    assert unknown.status_code == 401 and unknown.json()["detail"] == "unknown API key"
    basic = http.request(method, path, json=body, headers={"Authorization": "Basic eDp5"})
    assert basic.status_code == 401
    for role in ("ingest", "read", "admin"):
        response = http.request(method, path, json=body, headers=_auth(role))
        if role in (needs, "admin"):
            assert response.status_code not in (401, 403), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert f"needs '{needs}'" in response.json()["detail"]


def test_reads_can_be_public_but_writes_and_operators_never(limited: StatsClient) -> None:
    run = _run()
    match = random_match(random.Random(1), f"m-{run}", [f"p-{run}"], size=1)
    assert limited.post_match(match).status_code == 202
    assert limited.wait_finished([match["match_id"]]) == {match["match_id"]: "completed"}
    http = limited.http
    assert http.get(f"/v1/matches/{match['match_id']}").status_code == 200
    assert (
        http.get(f"/v1/players/p-{run}/matches").json()["matches"][0]["match_id"]
        == (match["match_id"])
    )
    # A key that is sent is still checked: a typo'd key is told, not ignored.
    wrong = {"Authorization": "Bearer typo"}
    assert http.get(f"/v1/matches/{match['match_id']}", headers=wrong).status_code == 401
    assert http.post("/v1/matches", json=match).status_code == 401
    assert http.get("/v1/admin/sagas").status_code == 401


# ---- the ingest rate limit ---------------------------------------------------------------


def test_ingest_is_rate_limited_per_key_with_retry_after(limited: StatsClient) -> None:
    run = _run()
    rng = random.Random(2)
    matches = [random_match(rng, f"m-{run}-{i}", [f"p-{run}"], size=1) for i in range(BURST + 2)]
    time.sleep(BURST / RATE)  # a full bucket, whatever ran before
    codes = [limited.post_match(m).status_code for m in matches[:BURST]]
    assert codes == [202] * BURST
    refused = limited.post_match(matches[BURST])
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "matches a second" in refused.json()["detail"]
    assert limited.get_match(matches[BURST]["match_id"]).status_code == 404  # nothing stored
    # Another key has a bucket of its own.
    assert limited.post_match(matches[BURST + 1], role="admin").status_code == 202
    time.sleep(int(refused.headers["retry-after"]))
    assert limited.post_match(matches[BURST]).status_code == 202


# ---- body and field limits ---------------------------------------------------------------


def _big_match(run: str) -> dict[str, Any]:
    match = random_match(random.Random(3), f"m-{run}", [f"p-{run}"], size=1)
    # Valid, but about twice the limit.
    match["players"][0]["medals"] = {f"medal_{i:02d}_" + "x" * 50: 1 for i in range(60)}
    match["players"][0]["weapons"] = {f"weapon_{i:02d}_" + "x" * 50: {} for i in range(60)}
    return match


def test_a_body_over_the_limit_is_413_before_it_is_read(limited: StatsClient) -> None:
    run = _run()
    match = _big_match(run)
    response = limited.post_match(match)
    assert response.status_code == 413
    assert f"larger than {BODY_LIMIT} bytes" in response.json()["detail"]
    assert limited.get_match(match["match_id"]).status_code == 404


def test_a_streamed_body_over_the_limit_is_413_too(limited: StatsClient) -> None:
    run = _run()
    raw = httpx.Request("POST", "/", json=_big_match(run)).content

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        for i in range(0, len(raw), 1000):
            yield raw[i : i + 1000]

    response = limited.http.post(
        "/v1/matches",
        content=chunks(),
        # (an admin key: the rate-limit test may have emptied the ingest key's bucket)
        headers={**_auth("admin"), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert limited.get_match(f"m-{run}").status_code == 404


def _valid(run: str) -> dict[str, Any]:
    match = random_match(random.Random(4), f"m-{run}", [f"p-{run}-0", f"p-{run}-1"], size=2)
    match["players"][0].update(kills=3, headshots=1, shots_fired=20, shots_hit=10)
    return match


def _kill(t: float, run: str) -> dict[str, Any]:
    return {"t": t, "type": "kill", "killer": f"p-{run}-0", "victim": f"p-{run}-1", "weapon": "br"}


BAD_FIELDS: list[tuple[str, Any, list[Any]]] = [
    ("match_id", "m" * 65, ["body", "match_id"]),
    ("match_id", "m' or PartitionKey ne '", ["body", "match_id"]),
    ("mode", "slayer\n", ["body", "mode"]),
    ("player_id", "p/1", ["body", "players", 0, "player_id"]),
    ("kills", 10_001, ["body", "players", 0, "kills"]),
    ("damage_dealt", 10**9, ["body", "players", 0, "damage_dealt"]),
    ("medal", "x" * 65, ["body", "players", 0, "medals"]),
    ("weapon", "rocket launcher", ["body", "players", 0, "weapons"]),
    ("players", 33, ["body", "players"]),
    ("events", 10_001, ["body", "events"]),
    ("unknown", "kils", ["body", "players", 0, "kils"]),
]


@pytest.mark.parametrize(("what", "bad", "loc"), BAD_FIELDS)
def test_every_field_is_bounded_and_named(
    client: StatsClient, what: str, bad: Any, loc: list[Any]
) -> None:
    run = _run()
    match = _valid(run)
    player = match["players"][0]
    if what in ("match_id", "mode"):
        match[what] = bad
    elif what in ("player_id", "kills", "damage_dealt"):
        player[what] = bad
    elif what == "medal":
        player["medals"] = {bad: 1}
    elif what == "weapon":
        player["weapons"] = {bad: {"kills": 1}}
    elif what == "players":
        match["players"] = [{"player_id": f"p-{run}-{i}", "outcome": "win"} for i in range(bad)]
    elif what == "events":
        match["events"] = [_kill(1.0, run)] * bad
    else:
        player[bad] = 3
    response = client.post_match(match)
    assert response.status_code == 422, response.text
    assert any(d["loc"][: len(loc)] == loc for d in response.json()["detail"]), response.text
    if what != "match_id":
        assert client.get_match(match["match_id"]).status_code == 404  # nothing stored


@pytest.mark.parametrize(
    "path",
    [
        "/v1/players/p'%20or%20'1'%20eq%20'1/stats",
        "/v1/players/" + "p" * 65 + "/matches",
        "/v1/matches/m%2F..%2Fx",
        "/v1/players/p-1/stats?mode=slayer%27",
        "/v1/players/p-1/matches?limit=26",
    ],
)
def test_ids_and_queries_outside_the_rules_are_422(client: StatsClient, path: str) -> None:
    response = client.http.get(path, headers=_auth("read"))
    assert response.status_code in (404, 422), response.text
    if response.status_code == 422:
        assert response.json()["detail"][0]["loc"][0] in ("path", "query")


def test_unknown_ids_are_404_with_a_body_naming_them(client: StatsClient) -> None:
    run = _run()
    for path, name in [
        (f"/v1/matches/m-{run}", f"m-{run}"),
        (f"/v1/players/p-{run}/stats", f"p-{run}"),
        (f"/v1/players/p-{run}/matches", f"p-{run}"),
    ]:
        response = client.http.get(path, headers=_auth("read"))
        assert response.status_code == 404
        assert name in response.json()["detail"]


# ---- reads -------------------------------------------------------------------------------


def test_service_record_is_conditional_on_its_etag(client: StatsClient) -> None:
    run = _run()
    rng = random.Random(5)
    first, second = (random_match(rng, f"m-{run}-{i}", [f"p-{run}"], size=1) for i in (1, 2))
    assert client.post_match(first).status_code == 202
    client.wait_finished([first["match_id"]])
    fresh = client.stats(f"p-{run}")
    etag = fresh.headers["etag"]
    path = f"/v1/players/p-{run}/stats"
    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        same = client.http.get(path, headers={**_auth("read"), "If-None-Match": sent})
        assert same.status_code == 304 and same.content == b"", sent
        assert same.headers["etag"] == etag
    assert client.post_match(second).status_code == 202
    client.wait_finished([second["match_id"]])
    changed = client.http.get(path, headers={**_auth("read"), "If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["matches"] == 2
    assert changed.headers["etag"] != etag


def test_per_mode_blocks(client: StatsClient) -> None:
    run = _run()
    rng = random.Random(6)
    matches = [random_match(rng, f"m-{run}-{i}", [f"p-{run}"], size=1) for i in range(3)]
    for m, mode in zip(matches, ["slayer", "slayer", "ctf"], strict=True):
        m["mode"] = mode
    for match in matches:
        assert client.post_match(match).status_code == 202
    client.wait_finished([m["match_id"] for m in matches])
    record = client.stats(f"p-{run}").json()
    slayer = client.http.get(
        f"/v1/players/p-{run}/stats", params={"mode": "slayer"}, headers=_auth("read")
    ).json()
    assert slayer["mode"] == "slayer" and slayer["matches"] == 2
    assert slayer["kills"] == sum(m["players"][0]["kills"] for m in matches[:2])
    assert record["modes"]["slayer"] == {
        k: v for k, v in slayer.items() if k not in ("player_id", "mode")
    }
    never = client.http.get(
        f"/v1/players/p-{run}/stats", params={"mode": "oddball"}, headers=_auth("read")
    ).json()
    assert never["matches"] == 0 and never["kd"] == 0.0


def test_match_detail_has_teams_lines_timeline_and_time_to_consistency(
    client: StatsClient,
) -> None:
    run = _run()
    match = _valid(run)
    match["players"][0].update(team="red", outcome="win", score=100, kills=3, headshots=1)
    match["players"][1].update(team="blue", outcome="loss", score=40)
    match["events"] = [_kill(10.0, run), _kill(11.0, run), _kill(12.0, run)]
    assert client.post_match(match).status_code == 202
    client.wait_finished([match["match_id"]])
    detail = client.get_match(match["match_id"]).json()
    red, blue = detail["teams"]
    assert (red["team"], red["outcome"], red["players"]) == ("red", "win", [f"p-{run}-0"])
    assert (red["score"], red["kills"]) == (100, 3)
    assert (blue["team"], blue["outcome"], blue["score"]) == ("blue", "loss", 40)
    line = detail["players"][0]
    assert line["counters"]["kills"] == 3 and line["status"] == "applied"
    # Medals and weapons are what the saga applied: aggregated from the events.
    assert line["medals"].get("triple_kill") == 1 and line["weapons"]["br"]["kills"] == 3
    offsets = [row["offset_s"] for row in detail["log"]]
    assert offsets == sorted(offsets) and offsets[0] >= 0
    assert detail["log"][-1]["type"] == "SagaCompleted"
    assert detail["time_to_consistency_s"] >= offsets[-1] - 0.001


def test_history_pages_hold_under_concurrent_inserts(client: StatsClient) -> None:
    run = _run()
    player = f"p-{run}"
    base = datetime.now(UTC) - timedelta(days=2)

    def match(i: int) -> dict[str, Any]:
        m = random_match(random.Random(i), f"m-{run}-{i:03d}", [player], size=1)
        m["ended_at"] = (base + timedelta(minutes=i)).isoformat().replace("+00:00", "Z")
        m["started_at"] = (base + timedelta(minutes=i - 5)).isoformat().replace("+00:00", "Z")
        return m

    # 60 matches at even minutes; the 40 inserted while paging fall in between and after.
    first = [match(i) for i in range(0, 120, 2)]
    for m in first:
        assert client.post_match(m).status_code == 202
    assert set(client.wait_finished([m["match_id"] for m in first], 120).values()) == {"completed"}
    inserted = [match(i) for i in range(1, 80, 2)]
    writer = StatsClient(str(client.http.base_url), KEYS)
    done = threading.Event()

    def insert() -> None:
        for m in inserted:
            assert writer.post_match(m).status_code == 202
        done.set()

    thread = threading.Thread(target=insert)
    thread.start()
    seen: list[dict[str, Any]] = []
    continuation = None
    while True:
        page = client.history(player, limit=7, continuation=continuation)
        assert page.status_code == 200, page.text
        seen += page.json()["matches"]
        continuation = page.json()["continuation"]
        if continuation is None:
            break
        time.sleep(0.1)  # let inserts land between pages
    thread.join()
    writer.http.close()
    assert done.is_set()
    ids = [m["match_id"] for m in seen]
    assert len(ids) == len(set(ids)), "a match was served twice"
    assert {m["match_id"] for m in first} <= set(ids), "a match was skipped"
    ended = [m["ended_at"] for m in seen]
    assert ended == sorted(ended, reverse=True)
    assert len(ids) <= len(first) + len(inserted)


# ---- the contract ------------------------------------------------------------------------


def test_leaderboards_answer_through_the_board_actors(client: StatsClient) -> None:
    # The worker created the board pool; this api reads a board through it (empty until
    # the shards feed it: a mode of this run's own, which nobody played).
    mode = f"mode-{_run()}"
    response = client.http.get(f"/v1/leaderboards/{mode}?stat=kd", headers=_auth("read"))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "mode": mode,
        "stat": "kd",
        "entries": [],
        "size": 0,
        "continuation": None,
    }


def test_openapi_documents_every_operation_with_its_errors(client: StatsClient) -> None:
    spec = client.http.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert spec["components"]["schemas"]["MatchIn"]["examples"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert operation.get("summary"), (method, path)
            if path.startswith("/v1/"):
                assert {"401", "403", "429"} <= codes, (method, path, codes)
                assert operation.get("security"), (method, path)
    ingest = spec["paths"]["/v1/matches"]["post"]
    assert {"202", "200", "409", "413", "422", "429"} <= set(ingest["responses"])
    assert client.http.get("/docs").status_code == 200
