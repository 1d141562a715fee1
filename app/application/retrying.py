"""In-process retries of idempotent calls, bounded by a deadline: the one place where
ingest's writes and the actors' storage opening ride out a dropped request.

azure-core does not retry a POST whose request failed (entity inserts, batches), and a
lost answer after the write was made reaches the caller at once: retrying here turns
such single faults into a slower success instead of a 503. Every attempt is cut off at
the deadline, so that a storage that stays down answers within it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from app.domain.errors import StorageUnavailable, TransientError
from app.domain.retry import InProcessRetry, next_delay

log = logging.getLogger(__name__)
T = TypeVar("T")


class Deadline:
    """A point in time shared by the steps of one request: each step retries only while
    it has not passed."""

    def __init__(self, policy: InProcessRetry, clock: Callable[[], float] = time.monotonic):
        self.policy = policy
        self._clock = clock
        self._at = clock() + policy.deadline_s

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self._at - self._clock()


async def retry_transient(
    call: Callable[[], Awaitable[T]],
    deadline: Deadline,
    what: str,
    retry_on: tuple[type[TransientError], ...] = (TransientError,),
    timeout_error: type[TransientError] = StorageUnavailable,
    cut_off: bool = True,
) -> T:
    """``await call()``, again after a jittered back-off while it raises one of
    ``retry_on`` and ``deadline`` has not passed; then the last error. With ``cut_off``
    an attempt still running after the policy's ``attempt_timeout_s``, or at the
    deadline, is cancelled and raises ``timeout_error`` (retried while time remains):
    its write may or may not have been made, which only an idempotent ``call`` may leave
    undecided. Without, an attempt runs to its client's own time limits (a client that a
    cancellation could leave broken, such as a shared Service Bus sender)."""
    backoff = deadline.policy.backoff

    def out_of_time(state: RetryCallState) -> bool:
        return (
            state.attempt_number >= backoff.max_attempts
            or deadline.remaining() <= state.upcoming_sleep
        )

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(retry_on),
        wait=lambda state: next_delay(backoff, state.attempt_number),
        stop=out_of_time,
        reraise=True,
        before_sleep=lambda state: log.info(
            "%s failed (%s); retrying", what, state.outcome and state.outcome.exception()
        ),
    )
    async for attempt in retrying:
        with attempt:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise timeout_error(f"{what}: no time left within the retry deadline")
            if not cut_off:
                return await call()
            limit = min(remaining, deadline.policy.attempt_timeout_s)
            cut = asyncio.timeout(limit)
            try:
                async with cut:
                    return await call()
            except TimeoutError as exc:
                if not cut.expired():
                    raise
                raise timeout_error(f"{what}: no answer within {limit:.2g} s") from exc
    raise AssertionError("unreachable: tenacity reraises")
