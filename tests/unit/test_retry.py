"""Retry policy: capped exponential back-off with injected jitter, and policy validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.retry import RetryPolicy, next_delay

NO_JITTER = RetryPolicy(base_s=1.0, cap_s=60.0, jitter=0.0)


@pytest.mark.parametrize(
    ("attempt", "delay"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 16.0), (6, 32.0), (7, 60.0), (8, 60.0)],
)
def test_delay_doubles_per_attempt_up_to_the_cap(attempt: int, delay: float) -> None:
    assert next_delay(NO_JITTER, attempt, rand=lambda: 0.5) == delay


def test_attempt_zero_or_below_waits_the_base_delay() -> None:
    assert next_delay(NO_JITTER, 0) == 1.0
    assert next_delay(NO_JITTER, -3) == 1.0


@pytest.mark.parametrize("attempt", [100, 1024, 1025, 5000, 10**6])
def test_a_very_late_attempt_waits_the_cap(attempt: int) -> None:
    # Compensation retries never give up, so attempt numbers can grow without bound.
    assert next_delay(NO_JITTER, attempt) == 60.0


@pytest.mark.parametrize(
    ("attempt", "low", "high"), [(1, 0.75, 1.5), (3, 3.0, 6.0), (12, 45.0, 90.0)]
)
def test_jitter_bounds_with_rand_injected(attempt: int, low: float, high: float) -> None:
    policy = RetryPolicy(base_s=1.5, cap_s=90.0, jitter=0.5)
    assert next_delay(policy, attempt, rand=lambda: 0.0) == low
    assert next_delay(policy, attempt, rand=lambda: 1.0) == high


def test_full_jitter_may_retry_at_once() -> None:
    policy = RetryPolicy(jitter=1.0)
    assert next_delay(policy, 4, rand=lambda: 0.0) == 0.0
    assert next_delay(policy, 4, rand=lambda: 1.0) == 8.0


@settings(max_examples=100, deadline=None)
@given(
    attempt=st.integers(1, 40),
    r=st.floats(0.0, 1.0),
    jitter=st.floats(0.0, 1.0),
)
def test_delay_lies_between_the_unjittered_floor_and_the_ceiling(
    attempt: int, r: float, jitter: float
) -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=30.0, jitter=jitter)
    ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
    delay = next_delay(policy, attempt, rand=lambda: r)
    assert ceiling * (1 - jitter) - 1e-9 <= delay <= ceiling + 1e-9


def test_the_default_rand_stays_within_bounds() -> None:
    policy = RetryPolicy(base_s=2.0, cap_s=60.0, jitter=0.5)
    assert all(2.0 <= next_delay(policy, 2) <= 4.0 for _ in range(200))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_s": 0.0},
        {"base_s": -1.0},
        {"base_s": 10.0, "cap_s": 5.0},
        {"max_attempts": 0},
        {"max_attempts": -1},
        {"jitter": -0.1},
        {"jitter": 1.01},
        {"jitter": float("nan")},
    ],
    ids=repr,
)
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"base_s": 5.0, "cap_s": 5.0}, {"max_attempts": 1}, {"jitter": 0.0}, {"jitter": 1.0}],
    ids=repr,
)
def test_edge_policies_are_accepted(kwargs: dict[str, float]) -> None:
    RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_the_default_policy() -> None:
    assert RetryPolicy() == RetryPolicy(base_s=1.0, cap_s=60.0, max_attempts=8, jitter=0.5)
