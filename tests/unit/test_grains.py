"""Virtual grains: activation, one turn per player, capacity, idempotent updates."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from actors.grains import GrainSettings, NewPlayerGuess, PlayerGrainHost
from app.application.ports import ApplyOutcome, PlayerSnapshot, PlayerUpdate
from app.domain.aggregation import aggregate
from app.domain.saga import Action
from app.domain.stats import StatDelta
from app.domain.validation import parse_match
from storage.memory import InMemoryPlayerStore
from tests.support.faults import FlakyPlayerStore
from tests.support.matches import random_match


def deltas_for(players: list[str], n: int, seed: int = 1, size: int | None = None) -> list:
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    out = []
    for i in range(n):
        raw = random_match(rng, f"m{run}-{i}", players, size=size)
        out += list(aggregate(parse_match(raw, datetime.now(UTC))).values())
    return out


async def test_one_turn_at_a_time_per_player_and_each_match_once() -> None:
    store = FlakyPlayerStore(InMemoryPlayerStore(), delay_s=0.005)
    host = PlayerGrainHost(store)
    deltas = [d for d in deltas_for(["a", "b", "c"], 12) if d.player_id == "a"]
    updates = [PlayerUpdate(Action.APPLY, d) for d in deltas]
    # The same updates from several callers at once (duplicate deliveries).
    results = await asyncio.gather(*(host.update(updates) for _ in range(3)))
    assert not store.overlapped
    changed = sum(r.changed for batch in results for r in batch)
    assert changed == len(deltas)
    assert all(r.ok for batch in results for r in batch)
    record = await host.service_record("a")
    assert record.counters["matches"] == len(deltas)


async def test_a_write_whose_answer_was_lost_is_served_once_it_is_retried() -> None:
    # The apply happens, its answer is lost, the quick retry finds the match applied:
    # the grain must not keep serving the record from before that write.
    store = FlakyPlayerStore(InMemoryPlayerStore(), lost_answers={"a": 1})
    host = PlayerGrainHost(store, GrainSettings(storage_attempts=3, storage_backoff_s=0.001))
    (delta,) = [d for d in deltas_for(["a"], 1, size=1)]
    (result,) = await host.update([PlayerUpdate(Action.APPLY, delta)])
    assert result.ok
    served = await host.service_record("a")
    stored = (await store.load("a")).record
    assert served.counters == stored.counters
    assert served.counters["matches"] == 1


async def test_reads_are_served_from_the_activation() -> None:
    inner = InMemoryPlayerStore()
    loads = 0
    original = inner.load

    async def counting_load(player_id: str):  # type: ignore[no-untyped-def]
        nonlocal loads
        loads += 1
        return await original(player_id)

    inner.load = counting_load  # type: ignore[method-assign]
    (delta,) = deltas_for(["z"], 1, size=1)
    await inner.apply(await original("z"), [delta])
    host = PlayerGrainHost(inner)
    for _ in range(5):
        assert (await host.service_record("z")).counters["matches"] == 1
    assert loads == 1 and host.stats()["activations"] == 1


async def test_reads_of_players_without_a_record_activate_nothing() -> None:
    store = InMemoryPlayerStore()
    host = PlayerGrainHost(store, GrainSettings(capacity=3))
    warm = ["w0", "w1", "w2"]
    await host.update([PlayerUpdate(Action.APPLY, d) for d in deltas_for(warm, 1, size=3)])
    for i in range(20):
        record = await host.service_record(f"nobody-{i}")
        assert record.first_played is None
    assert sorted(host.players()) == warm
    assert host.stats()["activations"] == 3 and host.stats()["deactivations"] == 0


async def test_capacity_is_never_exceeded_and_evicted_grains_reload_exactly() -> None:
    players = [f"p{i}" for i in range(50)]
    host = PlayerGrainHost(InMemoryPlayerStore(), GrainSettings(capacity=10))
    deltas = deltas_for(players, 20, seed=3)
    for d in deltas:
        await host.update([PlayerUpdate(Action.APPLY, d)])
        assert host.stats()["active"] <= 10
    assert host.stats()["deactivations"] > 0
    for pid in players:
        expected = sum(1 for d in deltas if d.player_id == pid)
        assert (await host.service_record(pid)).counters["matches"] == expected


async def test_failure_reports_per_player_without_hiding_the_others() -> None:
    store = FlakyPlayerStore(InMemoryPlayerStore(), permanent={"bad"})
    host = PlayerGrainHost(store)
    deltas = deltas_for(["bad", "good"], 1, size=2)
    results = {
        r.player_id: r for r in await host.update([PlayerUpdate(Action.APPLY, d) for d in deltas])
    }
    assert not results["bad"].ok and not results["bad"].transient
    assert "PermanentError" in (results["bad"].error or "")
    assert results["good"].ok and results["good"].changed


async def test_a_full_host_makes_new_players_wait_instead_of_overflowing() -> None:
    # Slow storage keeps every grain in a call: new players must wait for room.
    store = FlakyPlayerStore(InMemoryPlayerStore(), delay_s=0.01)
    host = PlayerGrainHost(store, GrainSettings(capacity=4))
    players = [f"w{i}" for i in range(30)]
    deltas = deltas_for(players, 10, seed=5, size=8)
    results = await asyncio.gather(*(host.update([PlayerUpdate(Action.APPLY, d)]) for d in deltas))
    assert all(r.ok for batch in results for r in batch)
    stats = host.stats()
    assert stats["peak_active"] == 4 and stats["active"] <= 4
    assert stats["capacity_waits"] > 0
    for pid in {d.player_id for d in deltas}:
        expected = sum(1 for d in deltas if d.player_id == pid)
        assert (await host.service_record(pid)).counters["matches"] == expected


async def test_a_moved_player_is_deactivated_after_its_current_turn() -> None:
    store = FlakyPlayerStore(InMemoryPlayerStore(), delay_s=0.05)
    host = PlayerGrainHost(store)
    (stay, move) = deltas_for(["stay", "move"], 1, size=2)
    await host.update([PlayerUpdate(Action.APPLY, stay)])
    turn = asyncio.create_task(host.update([PlayerUpdate(Action.APPLY, move)]))
    await asyncio.sleep(0.01)  # "move" is in its turn
    assert host.retire(lambda pid: pid == "stay") == 1
    assert set(host.players()) == {"stay", "move"}  # not while its turn runs
    (result,) = await turn
    assert result.ok and result.changed
    assert host.players() == ["stay"]
    assert host.stats()["deactivations"] == 1


class _Gated(InMemoryPlayerStore):
    """Applies wait at a gate and are counted, with the matches each one wrote; a match
    named in ``bad`` makes any apply that holds it fail permanently."""

    def __init__(self, bad: str | None = None) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.applies: list[list[str]] = []
        self.bad = bad

    async def apply(self, snapshot, deltas):  # type: ignore[no-untyped-def]
        await self.gate.wait()
        self.applies.append([d.match_id for d in deltas])
        if self.bad in self.applies[-1]:
            raise ValueError(f"corrupt delta of {self.bad}")
        return await super().apply(snapshot, deltas)


async def test_updates_queued_behind_a_turn_are_written_together_in_the_next() -> None:
    # A popular player's grain: while one write is in flight, the next matches queue up
    # and go out in one transaction, instead of one write each.
    store = _Gated()
    host = PlayerGrainHost(store, GrainSettings(turn_batch=4))
    deltas = [d for d in deltas_for(["hot", "x", "y"], 8, seed=5, size=3) if d.player_id == "hot"]
    calls = [asyncio.create_task(host.update([PlayerUpdate(Action.APPLY, d)])) for d in deltas]
    await asyncio.sleep(0.01)  # the first call holds the turn; the others queue
    store.gate.set()
    results = await asyncio.gather(*calls)
    assert [r.match_id for (r,) in results] == [d.match_id for d in deltas]
    assert all(r.ok and r.changed for (r,) in results)
    # One write for the first, then the queue in turns of at most 4 matches.
    assert [len(a) for a in store.applies] == [1, 4, 3]
    assert sorted(m for a in store.applies for m in a) == sorted(d.match_id for d in deltas)
    record = await host.service_record("hot")
    assert record.counters["matches"] == len(deltas)
    assert host.stats()["batched"] == 7


async def test_a_bad_match_batched_with_others_fails_alone() -> None:
    store = _Gated()
    host = PlayerGrainHost(store)
    deltas = [d for d in deltas_for(["hot", "x"], 5, seed=6, size=2) if d.player_id == "hot"]
    store.bad = deltas[2].match_id
    calls = [asyncio.create_task(host.update([PlayerUpdate(Action.APPLY, d)])) for d in deltas]
    await asyncio.sleep(0.01)
    store.gate.set()
    results = [r for (r,) in await asyncio.gather(*calls)]
    failed = [r for r in results if not r.ok]
    assert [r.match_id for r in failed] == [store.bad]
    assert failed[0].transient is False  # a bug or corrupt data: to the operators at once
    assert all(r.ok and r.changed for r in results if r.match_id != store.bad)
    record = await host.service_record("hot")
    assert record.counters["matches"] == len(deltas) - 1


async def test_a_caller_that_gives_up_does_not_stall_the_turn_of_the_others() -> None:
    store = _Gated()
    host = PlayerGrainHost(store)
    deltas = [d for d in deltas_for(["hot", "x"], 4, seed=7, size=2) if d.player_id == "hot"]
    calls = [asyncio.create_task(host.update([PlayerUpdate(Action.APPLY, d)])) for d in deltas]
    await asyncio.sleep(0.01)
    calls[1].cancel()  # queued behind the first; its update may still be written
    store.gate.set()
    done = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(done[1], asyncio.CancelledError)
    others = [batch for i, batch in enumerate(done) if i != 1]
    assert all(isinstance(b, list) and b[0].ok for b in others)


# ---- a cold activation's apply, with no read first (blind insert) ---------------------------


class _Counting(InMemoryPlayerStore):
    """Counts the loads and the apply attempts of each player."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: Counter[str] = Counter()
        self.applies: Counter[str] = Counter()

    async def load(self, player_id: str) -> PlayerSnapshot:
        self.loads[player_id] += 1
        return await super().load(player_id)

    async def apply(self, snapshot: PlayerSnapshot, deltas: Sequence[StatDelta]) -> ApplyOutcome:
        self.applies[snapshot.record.player_id] += 1
        return await super().apply(snapshot, deltas)


async def _known(store: InMemoryPlayerStore, deltas: list[StatDelta]) -> None:
    """Write ``deltas`` straight to the store, as another host did before."""
    for d in deltas:
        await InMemoryPlayerStore.apply(
            store, await InMemoryPlayerStore.load(store, d.player_id), [d]
        )


def test_the_guess_follows_the_share_of_new_players_in_its_window() -> None:
    guess = NewPlayerGuess(window=4)
    assert guess.likely_new()  # nothing seen yet: optimistic
    guess.observe(False)
    assert not guess.likely_new()
    guess.observe(True)
    assert guess.likely_new()  # one in two
    guess.observe(False)
    guess.observe(False)
    assert not guess.likely_new()  # one in four
    guess.observe(True)  # the first False leaves the window: T F F T
    assert guess.likely_new()
    guess.observe(False)  # F F T F
    assert not guess.likely_new()
    for _ in range(3):
        guess.observe(True)  # T T T: only the last four count
    assert guess.likely_new()


async def test_a_new_player_is_written_without_a_read() -> None:
    store = _Counting()
    host = PlayerGrainHost(store)
    deltas = deltas_for(["n1", "n2", "n3"], 1, size=3)
    results = await host.update([PlayerUpdate(Action.APPLY, d) for d in deltas])
    assert all(r.ok and r.changed for r in results)
    assert sum(store.loads.values()) == 0 and sum(store.applies.values()) == 3
    for pid in ("n1", "n2", "n3"):  # served from the activation the write made
        assert (await host.service_record(pid)).counters["matches"] == 1
    assert sum(store.loads.values()) == 0
    stats = host.stats()
    assert (stats["blind_inserts"], stats["blind_existing"], stats["activations"]) == (3, 0, 3)


async def test_a_known_player_met_by_a_blind_insert_is_read_and_written_exactly() -> None:
    store = _Counting()
    old, new = deltas_for(["k"], 2, size=1)
    await _known(store, [old])
    host = PlayerGrainHost(store)  # no cold activation seen yet: it guesses "new"
    (result,) = await host.update([PlayerUpdate(Action.APPLY, new)])
    assert result.ok and result.changed
    # One failed attempt as a new player, then a read and the write.
    assert (store.applies["k"], store.loads["k"]) == (2, 1)
    record = await host.service_record("k")
    assert record.counters["matches"] == 2
    assert record.counters["kills"] == old.counters["kills"] + new.counters["kills"]
    assert (await InMemoryPlayerStore.load(store, "k")).record == record
    assert (host.stats()["blind_inserts"], host.stats()["blind_existing"]) == (1, 1)


async def test_a_replay_met_by_a_blind_insert_is_already_applied_not_counted_twice() -> None:
    store = _Counting()
    first, second = deltas_for(["r"], 2, size=1)
    await _known(store, [first])
    host = PlayerGrainHost(store)
    (result,) = await host.update([PlayerUpdate(Action.APPLY, first)])
    assert result.ok and not result.changed  # its marker exists: applied before
    # Tried blind; the marker's 409 came first, so nothing said the record exists.
    assert (host.stats()["blind_inserts"], host.stats()["blind_existing"]) == (1, 0)
    assert (await host.service_record("r")).counters["matches"] == 1
    # A replay batched with a new match on a fresh host: the new one is written once.
    host = PlayerGrainHost(store)
    results = await host.update([PlayerUpdate(Action.APPLY, d) for d in (first, second)])
    assert [(r.ok, r.changed) for r in results] == [(True, False), (True, True)]
    assert (host.stats()["blind_inserts"], host.stats()["blind_existing"]) == (1, 1)
    assert (await host.service_record("r")).counters["matches"] == 2
    assert (await InMemoryPlayerStore.load(store, "r")).record.counters["matches"] == 2


async def test_two_hosts_inserting_one_new_player_at_once_both_count() -> None:
    # A doubled activation (during a resize): both write as a new player; one create wins,
    # the other meets its record, reads it and adds its match on top.
    store = FlakyPlayerStore(InMemoryPlayerStore(), delay_s=0.01)
    a, b = deltas_for(["twice"], 2, size=1)
    hosts = [PlayerGrainHost(store), PlayerGrainHost(store)]
    results = await asyncio.gather(
        hosts[0].update([PlayerUpdate(Action.APPLY, a)]),
        hosts[1].update([PlayerUpdate(Action.APPLY, b)]),
    )
    assert all(r.ok and r.changed for (r,) in results)
    assert (await store.load("twice")).record.counters["matches"] == 2
    assert sum(h.stats()["blind_existing"] for h in hosts) == 1


async def test_the_host_reads_first_once_most_cold_players_are_known_and_back() -> None:
    store = _Counting()
    known = [f"k{i}" for i in range(10)]
    await _known(store, deltas_for(known, 1, size=10))
    host = PlayerGrainHost(store)
    for d in deltas_for(known, 1, seed=2, size=10):
        (r,) = await host.update([PlayerUpdate(Action.APPLY, d)])
        assert r.ok and r.changed
    # Only the first met a record blind; the others were read first.
    assert (host.stats()["blind_inserts"], host.stats()["blind_existing"]) == (1, 1)
    fresh = [f"n{i}" for i in range(11)]
    for d in deltas_for(fresh, 1, seed=3, size=11):
        (r,) = await host.update([PlayerUpdate(Action.APPLY, d)])
        assert r.ok and r.changed
    # Read first while new players were under half of the cold ones (10 known: the first
    # 10 new ones), then blind again.
    assert sum(store.loads[p] for p in fresh) == 10
    assert (host.stats()["blind_inserts"], host.stats()["blind_existing"]) == (2, 1)


async def test_blind_inserts_can_be_turned_off() -> None:
    store = _Counting()
    host = PlayerGrainHost(store, GrainSettings(blind_insert=False))
    (d,) = deltas_for(["off"], 1, size=1)
    (r,) = await host.update([PlayerUpdate(Action.APPLY, d)])
    assert r.ok and r.changed
    assert store.loads["off"] == 1 and host.stats()["blind_inserts"] == 0


async def test_a_bad_match_in_one_call_with_other_matches_of_its_player_fails_alone() -> None:
    # A shard call carries the batches of several sagas: one player, several matches.
    store = _Gated()
    store.gate.set()
    host = PlayerGrainHost(store)
    deltas = [d for d in deltas_for(["hot", "x"], 4, seed=8, size=2) if d.player_id == "hot"]
    store.bad = deltas[1].match_id
    results = await host.update([PlayerUpdate(Action.APPLY, d) for d in deltas])
    assert [r.match_id for r in results] == [d.match_id for d in deltas]
    assert [r.ok for r in results] == [True, False, True, True]
    assert store.applies[0] == [d.match_id for d in deltas]  # tried in one turn first
    assert (await host.service_record("hot")).counters["matches"] == len(deltas) - 1


async def test_one_call_holding_an_update_twice_answers_both_and_counts_it_once() -> None:
    # Two sagas' batches in one call, both with the same player and match (a scheduled
    # retry racing the run it retries): each caller needs its answer.
    host = PlayerGrainHost(InMemoryPlayerStore())
    (delta,) = deltas_for(["solo"], 1, size=1)
    update = PlayerUpdate(Action.APPLY, delta)
    results = await host.update([update, update])
    assert len(results) == 2 and all(r.ok and r.match_id == delta.match_id for r in results)
    assert (await host.service_record("solo")).counters["matches"] == 1
