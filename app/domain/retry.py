"""Retry policy as data: how often and how late a failed player step is tried again."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Durable retries (scheduled bus messages) with exponential back-off and jitter.

    ``max_attempts`` counts failed attempts: the step is dead-lettered when the
    ``max_attempts``-th attempt fails.
    """

    base_s: float = 1.0
    cap_s: float = 60.0
    max_attempts: int = 8
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s:
            raise ValueError("need 0 < base_s <= cap_s")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must lie in [0, 1]")


def next_delay(
    policy: RetryPolicy, attempt: int, rand: Callable[[], float] = random.random
) -> float:
    """Delay before retry number ``attempt`` (1-based): capped exponential back-off, of
    which the ``jitter`` fraction is random so that retries of one outage spread out."""
    # The exponent is bounded: 2.0 ** 1024 raises OverflowError, and compensation retries
    # never give up, so attempts can grow that far (a product past the float range is inf).
    ceiling: float = min(policy.cap_s, policy.base_s * 2.0 ** min(max(attempt - 1, 0), 1023))
    return ceiling * (1 - policy.jitter) + ceiling * policy.jitter * rand()


@dataclass(frozen=True, slots=True)
class InProcessRetry:
    """Retries within one request (or one start-up step), bounded by a total deadline:
    ``backoff`` spaces the attempts, ``deadline_s`` is the time after which no attempt
    runs on and the caller gets the transient error. For idempotent writes only."""

    deadline_s: float = 3.0
    # Short delays, all random (jitter 1): the faults this rides out are single dropped
    # requests, and concurrent requests that failed together should not retry together.
    backoff: RetryPolicy = RetryPolicy(base_s=0.05, cap_s=0.5, max_attempts=20, jitter=1.0)
    # An attempt is cut off after this long (or at the deadline, if sooner): the SDKs'
    # own retries of a failed GET or PUT wait 1.6 s (tables) or 2.2 s (blobs) after the
    # second failure, which used up a 3 s deadline that a fresh attempt would have met
    # (2% of the POSTs answered 503 at 10% storage faults).
    attempt_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        if self.deadline_s <= 0 or self.attempt_timeout_s <= 0:
            raise ValueError("deadline_s and attempt_timeout_s must be > 0")
