"""The longest ids the API accepts (64-character match and player ids) through the paths
that build the longest message ids: a durable retry (a scheduled ``player-updates``
message) and a dead letter, on the local broker with the real worker, Ray and Azurite.
Before message ids were bounded, the SDK refused both messages (over 128 characters)."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from app.domain.ids import MAX_ID_LENGTH, MAX_MESSAGE_ID_LENGTH
from devstack.processes import Azurite
from tests.chaos.conftest import Scenario, StartScenario
from tests.support.matches import random_match
from tests.support.runs import post_all, saga_events, verify, wait_states

pytestmark = [pytest.mark.chaos, pytest.mark.e2e, pytest.mark.broker, pytest.mark.timeout(900)]
BATCHES = 6  # of 8 matches: at 30% faults one batch nearly always has a durable retry


def long_id(kind: str, run: str, n: int) -> str:
    """A 64-character id whose distinguishing number comes last, where a shortened message
    id keeps only a digest of it."""
    tail = f"-{n:03d}"
    return f"{kind}-{run}-".ljust(MAX_ID_LENGTH - len(tail), "x") + tail


def long_matches(n: int, seed: int, population: int, max_size: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    players = [long_id("p", run, i) for i in range(population)]
    return [
        random_match(rng, long_id("m", run, i), players, size=rng.randint(1, max_size))
        for i in range(n)
    ]


def test_durable_retries_of_max_length_ids_are_delivered_and_applied_once(
    start_scenario: StartScenario, azurite: Azurite
) -> None:
    # No SDK retries, so that faults outlast the grain's own attempts: durable retries.
    s = start_scenario("long-ids", "storage=0.3,seed=29", STATSAGA_STORAGE_SDK_RETRIES="0")
    posted: list[str] = []
    retried: list[dict[str, Any]] = []
    for batch in range(BATCHES):
        matches = long_matches(8, seed=900 + batch, population=24, max_size=6)
        ids = [m["match_id"] for m in matches]
        assert all(len(i) == MAX_ID_LENGTH for i in ids)
        post_all(s.client, matches)
        posted += ids
        want = dict.fromkeys(ids, "completed")
        assert wait_states(s.client, want, 300) == want
        for match_id in ids:
            log = s.client.get_match(match_id).json()["log"]
            retried += [e for e in log if e["type"] == "RetryScheduled"]
        if retried:
            break
    assert retried, f"no durable retry in {len(posted)} matches at 30% faults"
    assert all(len(e["player_id"]) == MAX_ID_LENGTH for e in retried)
    # Each player is applied once per match, retried or not, and every record is exact.
    kinds = saga_events(s.client, posted)
    players = sum(len(s.client.get_match(m).json()["players"]) for m in posted)
    assert kinds["PlayerApplied"] == players, kinds
    assert kinds["PlayerDeadLettered"] == 0, kinds
    verify(s, azurite, posted)
    # Delivered as the scheduled message, not recovered later by the stall sweeper after
    # the saga's message was dead-lettered for a refused send.
    admin = s.client._auth("admin")
    letters = s.client.http.get("/v1/admin/deadletters", headers=admin).json()["deadletters"]
    assert [d for d in letters if d["match_id"] in posted] == []


def test_a_max_length_player_dead_letter_lands_and_is_replayed(
    clean_scenario: Scenario, azurite: Azurite
) -> None:
    s = clean_scenario
    (match,) = long_matches(1, seed=83, population=6, max_size=6)
    mid = match["match_id"]
    victim = match["players"][0]["player_id"]
    # The victim's record row is corrupt: every update of it fails, permanently, until an
    # operator repairs the row.
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    table = service.get_table_client(f"{s.prefix}players")
    table.upsert_entity({"PartitionKey": victim, "RowKey": "record", "data": "{corrupt"})
    post_all(s.client, [match])
    assert wait_states(s.client, {mid: "stuck"}, 90) == {mid: "stuck"}

    admin = s.client._auth("admin")
    letters = s.client.http.get("/v1/admin/deadletters", headers=admin).json()["deadletters"]
    mine = [d for d in letters if d["match_id"] == mid]
    assert [(d["queue"], d["player_id"], d["reason"]) for d in mine] == [
        ("player-updates", victim, "PlayerStepFailed")
    ]
    assert len(mine[0]["message_id"]) <= MAX_MESSAGE_ID_LENGTH

    table.delete_entity(victim, "record")  # the operator repairs the partition
    replay = s.client.http.post(
        "/v1/admin/deadletters/replay",
        json={"message_ids": [mine[0]["message_id"]]},
        headers=admin,
    )
    assert replay.status_code == 200, replay.text
    assert [r["match_id"] for r in replay.json()["replayed"]] == [mid]
    assert wait_states(s.client, {mid: "completed"}, 90) == {mid: "completed"}
    verify(s, azurite, [mid])
    applied = Counter(
        e["player_id"]
        for e in s.client.get_match(mid).json()["log"]
        if e["type"] == "PlayerApplied"
    )
    assert applied == Counter(line["player_id"] for line in match["players"])
    remaining = s.client.http.get("/v1/admin/deadletters", headers=admin).json()
    assert mid not in {d["match_id"] for d in remaining["deadletters"]}
    table.close()
    service.close()
