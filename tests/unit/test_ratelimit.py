"""The per-key token bucket behind the ingest rate limit."""

from __future__ import annotations

import pytest

from app.domain.ratelimit import RateLimit, RateLimiter, retry_after_header


def test_a_burst_passes_then_the_next_request_waits_for_a_token() -> None:
    limiter = RateLimiter(RateLimit(rate=2.0, burst=3))
    assert [limiter.acquire("k", 10.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("k", 10.0) == pytest.approx(0.5)
    # Refused requests take nothing: after the wait, exactly one passes.
    assert limiter.acquire("k", 10.5) == 0.0
    assert limiter.acquire("k", 10.5) == pytest.approx(0.5)


def test_keys_have_their_own_buckets() -> None:
    limiter = RateLimiter(RateLimit(rate=1.0, burst=1))
    assert limiter.acquire("a", 0.0) == 0.0
    assert limiter.acquire("a", 0.0) > 0
    assert limiter.acquire("b", 0.0) == 0.0


def test_the_sustained_rate_is_the_configured_rate() -> None:
    limiter = RateLimiter(RateLimit(rate=5.0, burst=5))
    allowed = sum(limiter.acquire("k", t / 100) == 0.0 for t in range(1001))  # 10 s
    assert 5 + 49 <= allowed <= 5 + 50  # the burst, then 5 a second (float rounding)


def test_rate_zero_is_off() -> None:
    limiter = RateLimiter(RateLimit(rate=0.0, burst=1))
    assert all(limiter.acquire("k", 0.0) == 0.0 for _ in range(1000))


def test_idle_keys_are_forgotten_and_the_key_count_is_bounded() -> None:
    limiter = RateLimiter(RateLimit(rate=1.0, burst=2), max_keys=3)
    for i in range(10):
        limiter.acquire(f"k{i}", 0.0)
    assert len(limiter._buckets) == 3
    limiter.acquire("late", 100.0)  # every other bucket would be full again by now
    assert list(limiter._buckets) == ["late"]


def test_retry_after_rounds_up_to_whole_seconds() -> None:
    assert [retry_after_header(s) for s in (0.01, 1.0, 1.2)] == ["1", "1", "2"]


def test_wait_tells_when_a_token_will_be_there_without_taking_one() -> None:
    limiter = RateLimiter(RateLimit(rate=0.5, burst=2))
    assert limiter.wait("k", 0.0) == 0.0 and len(limiter) == 0  # unseen: nothing kept
    limiter.acquire("k", 0.0)
    assert limiter.wait("k", 0.0) == 0.0
    limiter.acquire("k", 0.0)
    assert limiter.wait("k", 0.0) == pytest.approx(2.0)
    assert limiter.wait("k", 0.0) == pytest.approx(2.0)  # waiting took nothing
    assert limiter.wait("k", 2.0) == 0.0
