"""A grain's turn meets stale etags: it reloads and writes again, for applies and reverts
alike, and gives up (a transient failure, for the saga to retry) when conflicts persist."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from actors.grains import GrainSettings, PlayerGrainHost
from app.application.ports import ApplyOutcome, PlayerSnapshot, PlayerUpdate, RevertOutcome
from app.domain.errors import ConcurrencyConflict
from app.domain.saga import Action
from app.domain.stats import StatDelta
from storage.memory import InMemoryPlayerStore
from tests.unit.test_grains import deltas_for


class _Refusing(InMemoryPlayerStore):
    """Counts write attempts; refuses every write as stale once ``refuse`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse = False
        self.writes: Counter[str] = Counter()

    async def apply(self, snapshot: PlayerSnapshot, deltas: Sequence[StatDelta]) -> ApplyOutcome:
        self.writes["apply"] += 1
        if self.refuse:
            raise ConcurrencyConflict("refused")
        return await super().apply(snapshot, deltas)

    async def revert(self, snapshot: PlayerSnapshot, delta: StatDelta) -> RevertOutcome:
        self.writes["revert"] += 1
        if self.refuse:
            raise ConcurrencyConflict("refused")
        return await super().revert(snapshot, delta)


async def test_a_revert_over_a_record_another_host_moved_reloads_and_reverts_once() -> None:
    store = InMemoryPlayerStore()
    mine, theirs = deltas_for(["p"], 2, size=1)
    here, there = PlayerGrainHost(store), PlayerGrainHost(store)
    await here.update([PlayerUpdate(Action.APPLY, mine)])  # activated: its etag cached
    await there.update([PlayerUpdate(Action.APPLY, theirs)])  # the record moves on
    (result,) = await here.update([PlayerUpdate(Action.COMPENSATE, mine)])
    assert result.ok and result.changed
    stored = (await store.load("p")).record
    only_theirs = InMemoryPlayerStore()
    await only_theirs.apply(await only_theirs.load("p"), [theirs])
    assert stored.counters == (await only_theirs.load("p")).record.counters
    assert await here.service_record("p") == stored


async def test_an_apply_over_a_record_another_host_moved_reloads_and_applies_once() -> None:
    store = InMemoryPlayerStore()
    first, theirs, second = deltas_for(["q"], 3, size=1)
    here, there = PlayerGrainHost(store), PlayerGrainHost(store)
    await here.update([PlayerUpdate(Action.APPLY, first)])
    await there.update([PlayerUpdate(Action.APPLY, theirs)])
    (result,) = await here.update([PlayerUpdate(Action.APPLY, second)])
    assert result.ok and result.changed
    assert (await store.load("q")).record.counters["matches"] == 3
    assert (await here.service_record("q")).counters["matches"] == 3


async def test_conflicts_that_keep_coming_fail_the_update_as_transient_after_the_retries() -> None:
    store = _Refusing()
    host = PlayerGrainHost(store, GrainSettings(conflict_retries=3, blind_insert=False))
    (delta,) = deltas_for(["r"], 1, size=1)
    await host.update([PlayerUpdate(Action.APPLY, delta)])
    store.refuse = True
    for action in (Action.APPLY, Action.COMPENSATE):
        (result,) = await host.update([PlayerUpdate(action, delta)])
        assert not result.ok and result.transient
        assert "ConcurrencyConflict" in (result.error or "")
    assert store.writes == Counter({"apply": 1 + 3, "revert": 3})
    assert host.stats()["failures"] == 2
