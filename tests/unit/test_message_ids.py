"""Every message id statsaga sends fits Service Bus's 128 characters, for the longest ids
the API accepts, and stays a deterministic duplicate-detection key."""

from __future__ import annotations

import pytest

from app.application import messages
from app.application.messages import PlayerRetry
from app.application.operations import replay_id
from app.domain.ids import MAX_ID_LENGTH, MAX_MESSAGE_ID_LENGTH, bus_message_id, is_valid_id
from app.domain.saga import Action

MATCH = "m" * (MAX_ID_LENGTH - 1) + "1"
PLAYER = "p" * (MAX_ID_LENGTH - 1) + "1"


def every_message_id(match_id: str, player_id: str) -> list[str]:
    retries = [
        PlayerRetry(match_id, player_id, attempt, action, dead)
        for attempt in (1, 9, 99999)
        for action in Action
        for dead in (None, "x" * 5000)
    ]
    return [
        messages.match_completed(match_id).message_id,
        messages.match_resume(match_id, 10**12).message_id,
        messages.match_redrive(match_id, 10**12).message_id,
        messages.match_invalidated(match_id, "why").message_id,
        *(r.to_message().message_id for r in retries),
    ]


def test_the_longest_ids_the_api_accepts_make_message_ids_of_at_most_128() -> None:
    assert is_valid_id(MATCH) and is_valid_id(PLAYER)
    ids = every_message_id(MATCH, PLAYER)
    assert max(len(i) for i in ids) <= MAX_MESSAGE_ID_LENGTH
    # Four saga messages; per action three attempts and one dead letter (whatever attempt).
    assert len(set(ids)) == 4 + len(Action) * 4


def test_a_retry_id_is_the_same_each_time_and_differs_per_attempt_player_and_action() -> None:
    def mid(player: str, attempt: int, action: Action = Action.APPLY) -> str:
        return PlayerRetry(MATCH, player, attempt, action).to_message().message_id

    assert mid(PLAYER, 3) == mid(PLAYER, 3)  # a repeated schedule is a duplicate
    other = PLAYER[:-1] + "2"  # differs only in a character the shortened id drops
    distinct = {mid(PLAYER, 3), mid(PLAYER, 4), mid(other, 3), mid(PLAYER, 3, Action.COMPENSATE)}
    assert len(distinct) == 4 and max(len(i) for i in distinct) <= MAX_MESSAGE_ID_LENGTH
    dead = PlayerRetry(MATCH, PLAYER, 3, Action.APPLY, "boom").to_message().message_id
    assert dead not in distinct


def test_an_id_that_fits_is_kept_as_it_reads() -> None:
    assert bus_message_id("m-1", "p-1", "apply", "2") == "m-1:p-1:apply:2"
    assert messages.match_completed(MATCH).message_id == MATCH
    exact = "a" * MAX_MESSAGE_ID_LENGTH
    assert bus_message_id(exact) == exact


@pytest.mark.parametrize("length", [129, 200, 1000])
def test_a_long_id_is_shortened_to_its_readable_ends_around_a_digest(length: int) -> None:
    full = "h" * 60 + "x" * (length - 60 - 34) + "t" * 34
    short = bus_message_id(full)
    assert len(short) == MAX_MESSAGE_ID_LENGTH
    assert short.startswith("h" * 60 + "~") and short.endswith("~" + "t" * 34)
    assert bus_message_id(full) == short
    assert bus_message_id(full[:-1] + "u") != short
    # "~" is outside the id alphabet: a shortened id never equals one that was kept.
    assert "~" in short


def test_a_replay_of_a_max_length_dead_letter_fits_and_stays_distinct() -> None:
    dead = PlayerRetry(MATCH, PLAYER, 3, Action.APPLY, "boom").to_message().message_id
    replays = {replay_id(dead) for _ in range(20)}
    again = dead
    for _ in range(20):
        again = replay_id(again)
    assert max(len(r) for r in [*replays, again]) <= MAX_MESSAGE_ID_LENGTH
    assert len(replays) == 20 and dead not in replays
