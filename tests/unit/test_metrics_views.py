"""Views read at scrape time: their families, and a source that fails or hangs, which
must leave its families out of the scrape, count an error and warn once per streak."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.application.messages import MATCHES_QUEUE, PLAYER_UPDATES_QUEUE
from app.application.ports import QueueDepth
from app.domain.aggregation import aggregate
from app.domain.retry import RetryPolicy
from app.domain.saga import SagaStarted, transition
from app.domain.validation import parse_match
from app.observability.metrics import Metrics
from app.observability.metrics_views import ScrapeSource, pool_families, queue_families
from storage.memory import InMemorySagaLog
from tests.support.matches import random_match

DESCRIBED: dict[str, Any] = {
    "version": 3,
    "pools": {
        "game": {"size": 1, "members": [{"index": 0, "saga_calls": 7}]},
        "player": {
            "size": 2,
            "members": [
                {"index": 0, "active": 5, "activations": 9, "deactivations": 4},
                {"index": 1, "error": "GetTimeoutError: no answer"},
            ],
        },
    },
}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def names(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


async def scrape(metrics: Metrics) -> str:
    body, _ = await metrics.exposition()
    return body.decode()


# ---- the families ------------------------------------------------------------------------


async def test_pool_families_show_each_shard_and_which_members_answered() -> None:
    metrics = Metrics()
    metrics.views.add(ScrapeSource("pools", _const(DESCRIBED), pool_families, 1.0, 5.0))
    found = samples(await scrape(metrics))
    assert found[("statsaga_pool_size", (("pool", "player"),))] == 2
    assert found[("statsaga_pool_member_up", (("member", "0"), ("pool", "player")))] == 1
    assert found[("statsaga_pool_member_up", (("member", "1"), ("pool", "player")))] == 0
    assert found[("statsaga_pool_member_up", (("member", "0"), ("pool", "game")))] == 1
    assert found[("statsaga_grains_active", (("shard", "0"),))] == 5
    assert found[("statsaga_grain_activations_total", (("shard", "0"),))] == 9
    assert found[("statsaga_grain_deactivations_total", (("shard", "0"),))] == 4
    # A shard that did not answer has no grain numbers rather than made-up zeros.
    assert ("statsaga_grains_active", (("shard", "1"),)) not in found


def test_queue_families_show_each_kind_of_each_queue() -> None:
    (gauge,) = queue_families(
        {MATCHES_QUEUE: QueueDepth(3, 0, 1), PLAYER_UPDATES_QUEUE: QueueDepth(0, 2, 0)}
    )
    values = {tuple(s.labels.values()): s.value for s in gauge.samples}
    assert values == {
        (MATCHES_QUEUE, "active"): 3,
        (MATCHES_QUEUE, "scheduled"): 0,
        (MATCHES_QUEUE, "dead_letter"): 1,
        (PLAYER_UPDATES_QUEUE, "active"): 0,
        (PLAYER_UPDATES_QUEUE, "scheduled"): 2,
        (PLAYER_UPDATES_QUEUE, "dead_letter"): 0,
    }


async def test_open_sagas_are_counted_by_state_from_the_saga_log() -> None:
    sagas = InMemorySagaLog()
    rng = random.Random(3)
    for i in range(3):
        match = parse_match(random_match(rng, f"m-open-{i}", ["a", "b", "c"], size=2), now=None)
        record, _ = await sagas.create(match, match.ended_at, aggregate(match))
        if i == 0:  # one of them started
            step = transition(record.saga, SagaStarted(match.player_ids), RetryPolicy())
            await sagas.save(record, step.saga, step.events, match.ended_at)
    metrics = Metrics()
    metrics.views.watch(sagas=sagas)
    found = samples(await scrape(metrics))
    by_state = {
        dict(labels)["state"]: value
        for (name, labels), value in found.items()
        if name == "statsaga_sagas_open"
    }
    assert by_state == {
        "accepted": 2,
        "running": 1,
        "recovering": 0,
        "stuck": 0,
        "compensating": 0,
    }


# ---- a source that fails or hangs --------------------------------------------------------


async def test_a_failing_source_is_left_out_counted_and_warned_once_per_streak(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers: list[BaseException | dict[str, Any]] = [
        ConnectionError("directory unreachable"),
        ConnectionError("directory unreachable"),
        DESCRIBED,
        ConnectionError("again"),
    ]

    async def describe() -> dict[str, Any]:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    metrics = Metrics()
    # No caching here: every scrape reads the source.
    metrics.views.add(ScrapeSource("pools", describe, pool_families, 1.0, ttl_s=0.0))
    caplog.set_level(logging.INFO, logger="app.observability.metrics_views")
    errors = ("statsaga_scrape_errors_total", (("source", "pools"),))

    first = await scrape(metrics)
    assert "statsaga_grains_active" not in names(first)
    assert "statsaga_sagas_finished" in names(first)  # the rest of the scrape is served
    assert samples(first)[errors] == 1
    second = await scrape(metrics)
    assert samples(second)[errors] == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "directory unreachable" in warnings[0].getMessage()

    recovered = await scrape(metrics)
    assert "statsaga_grains_active" in names(recovered) and samples(recovered)[errors] == 2
    assert any("answers again" in r.getMessage() for r in caplog.records)

    failing_again = await scrape(metrics)
    assert "statsaga_grains_active" not in names(failing_again)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


async def test_a_hanging_source_times_out_and_the_scrape_goes_on() -> None:
    async def never() -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    metrics = Metrics()
    metrics.views.add(ScrapeSource("pools", never, pool_families, timeout_s=0.05, ttl_s=5.0))
    metrics.views.add(ScrapeSource("queues", _const({}), queue_families, 1.0, 5.0))
    # Bounded by the source's timeout: the scrape answers (the 10 s guard only catches
    # a scrape that would hang with the source).
    text = await asyncio.wait_for(scrape(metrics), 10)
    assert "statsaga_grains_active" not in names(text)
    assert "statsaga_queue_messages" in names(text)
    assert samples(text)[("statsaga_scrape_errors_total", (("source", "pools"),))] == 1
    assert samples(text)[("statsaga_scrape_errors_total", (("source", "queues"),))] == 0


async def test_a_fresh_source_is_served_from_its_cache() -> None:
    calls = 0
    now = 100.0

    async def describe() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return DESCRIBED

    metrics = Metrics()
    source = ScrapeSource("pools", describe, pool_families, 1.0, 5.0, clock=lambda: now)
    metrics.views.add(source)
    await asyncio.gather(scrape(metrics), scrape(metrics))  # concurrent scrapes: one read
    await scrape(metrics)
    assert calls == 1
    now += 5.0
    await scrape(metrics)
    assert calls == 2


async def test_a_source_whose_answer_cannot_be_read_is_left_out_too() -> None:
    metrics = Metrics()
    metrics.views.add(ScrapeSource("pools", _const({"pools": None}), pool_families, 1.0, 5.0))
    text = await scrape(metrics)
    assert "statsaga_pool_size" not in names(text)
    assert samples(text)[("statsaga_scrape_errors_total", (("source", "pools"),))] == 1


def _const(value: Any) -> Any:
    async def fetch() -> Any:
        return value

    return fetch
