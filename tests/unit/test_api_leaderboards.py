"""``GET /v1/leaderboards/{mode}``: pages of a board hosted in process (``BoardHost`` over
the in-memory adapters), each bad parameter named, reads authorised like the players'."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from actors.grains import GrainSettings, PlayerGrainHost
from app.application.boards import BoardHost
from app.application.operations import Operations
from app.application.ports import PlayerSnapshot
from app.application.services import StatsService
from app.domain.leaderboards import STATS, BoardUpdate
from app.domain.ratings import SkillRating
from app.domain.stats import ServiceRecord
from app.entrypoints.api import create_app
from app.entrypoints.api.leaderboards import Stat
from app.settings import Settings
from storage.memory import InMemoryPayloadArchive, InMemoryPlayerStore, InMemorySagaLog
from storage.memory_boards import InMemoryBoardSnapshots
from storage.memory_bus import InMemoryMessageBus
from tests.support.boards import rated

READ = {"Authorization": "Bearer read-key-0123456789"}


@dataclass
class Api:
    client: httpx.AsyncClient
    boards: BoardHost
    store: InMemoryPlayerStore


def build(boards: BoardHost | None, store: InMemoryPlayerStore) -> httpx.AsyncClient:
    sagas, archive, bus = InMemorySagaLog(), InMemoryPayloadArchive(), InMemoryMessageBus()
    service = StatsService(sagas, archive, store, PlayerGrainHost(store, GrainSettings()), bus)
    settings = Settings(api_keys="read-key-0123456789:read")
    app = create_app(settings, service, Operations(sagas, bus), boards=boards)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://statsaga")


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    store = InMemoryPlayerStore()
    boards = BoardHost(InMemoryBoardSnapshots(), store)
    async with build(boards, store) as client:
        yield Api(client, boards, store)


def values(kills: int) -> dict[str, float]:
    return {"rating": kills / 10, "kills": float(kills), "wins": float(kills % 3), "kd": 1.0}


def test_the_api_names_the_domains_stats() -> None:
    assert tuple(s.value for s in Stat) == STATS


async def test_a_board_pages_from_the_top(api: Api) -> None:
    await api.boards.offer([BoardUpdate("slayer", f"p-{k:02}", values(k)) for k in range(30)])
    first = await api.client.get("/v1/leaderboards/slayer?stat=kills&limit=20", headers=READ)
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["mode"], body["stat"], body["size"]) == ("slayer", "kills", 30)
    assert body["entries"][:2] == [
        {"rank": 1, "player_id": "p-29", "value": 29.0},
        {"rank": 2, "player_id": "p-28", "value": 28.0},
    ]
    await api.boards.offer([BoardUpdate("slayer", "p-00", values(99))])  # moves above the cursor
    rest = await api.client.get(
        "/v1/leaderboards/slayer",
        params={"stat": "kills", "limit": 20, "continuation": body["continuation"]},
        headers=READ,
    )
    entries = rest.json()["entries"]
    assert [e["player_id"] for e in entries] == [f"p-{k:02}" for k in range(9, 0, -1)]
    assert entries[0]["rank"] == 22 and rest.json()["continuation"] is None  # p-00 went up
    default = (await api.client.get("/v1/leaderboards/slayer", headers=READ)).json()
    assert default["stat"] == "rating" and len(default["entries"]) == 25


async def test_a_mode_nobody_played_has_an_empty_board(api: Api) -> None:
    response = await api.client.get("/v1/leaderboards/oddball?stat=wins", headers=READ)
    assert response.json() == {
        "mode": "oddball",
        "stat": "wins",
        "entries": [],
        "size": 0,
        "continuation": None,
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("stat=deaths", "stat"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("continuation=" + "x" * 513, "continuation"),
    ],
)
async def test_a_bad_parameter_is_named(api: Api, query: str, field: str) -> None:
    response = await api.client.get(f"/v1/leaderboards/slayer?{query}", headers=READ)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["query", field]]


async def test_a_token_this_board_never_issued_is_a_400(api: Api) -> None:
    await api.boards.offer([BoardUpdate("slayer", f"p{k}", values(k)) for k in range(3)])
    page = await api.client.get("/v1/leaderboards/slayer?stat=kills&limit=1", headers=READ)
    token = page.json()["continuation"]
    for stat, bad in (("wins", token), ("kills", "garbage"), ("kills", token[:-2])):
        response = await api.client.get(
            "/v1/leaderboards/slayer", params={"stat": stat, "continuation": bad}, headers=READ
        )
        assert response.status_code == 400
        assert response.json()["detail"].startswith("continuation: ")


async def test_reads_need_a_read_key_and_answer_304_when_unchanged(api: Api) -> None:
    assert (await api.client.get("/v1/leaderboards/slayer")).status_code == 401
    await api.boards.offer([BoardUpdate("slayer", "p", values(3))])
    first = await api.client.get("/v1/leaderboards/slayer", headers=READ)
    tagged = {**READ, "If-None-Match": first.headers["ETag"]}
    assert (await api.client.get("/v1/leaderboards/slayer", headers=tagged)).status_code == 304
    await api.boards.offer([BoardUpdate("slayer", "p", values(4))])
    assert (await api.client.get("/v1/leaderboards/slayer", headers=tagged)).status_code == 200


async def test_without_leaderboards_the_route_answers_503() -> None:
    async with build(None, InMemoryPlayerStore()) as client:
        response = await client.get("/v1/leaderboards/slayer", headers=READ)
    assert response.status_code == 503 and "Retry-After" in response.headers


async def test_a_rebuild_from_the_stores_records_serves_them(api: Api) -> None:
    for n, pid in enumerate(["low", "high"], start=1):
        await api.store.apply(PlayerSnapshot(ServiceRecord(pid)), [rated(pid, n * 5)])
    assert await api.boards.rebuild() == 2
    body = (await api.client.get("/v1/leaderboards/slayer?stat=rating", headers=READ)).json()
    assert [e["player_id"] for e in body["entries"]] == ["high", "low"]
    high = SkillRating().plus(rated("high", 10).rating.delta)  # type: ignore[union-attr]
    assert body["entries"][0]["value"] == round(high.skill, 6)  # in millionths, as kept
