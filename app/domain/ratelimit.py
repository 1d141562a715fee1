"""Per-key rate limiting: a token bucket per key, with time passed in."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``rate`` requests per second on average, bursts of up to ``burst``; off at rate 0."""

    rate: float
    burst: int

    @property
    def enabled(self) -> bool:
        """Whether requests are limited at all."""
        return self.rate > 0


class RateLimiter:
    """Token buckets keyed by caller. Keys unseen for long enough that their bucket would
    be full again are forgotten, so memory is bounded by the keys active within
    ``burst / rate`` seconds (and by ``max_keys``, oldest dropped first)."""

    def __init__(self, limit: RateLimit, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def acquire(self, key: str, now: float) -> float:
        """Take one token for ``key`` at monotonic time ``now``: 0.0 when allowed, else
        how many seconds until a token will be there (the caller answers 429)."""
        if not self.limit.enabled:
            return 0.0
        rate, burst = self.limit.rate, float(self.limit.burst)
        tokens, at = self._buckets.pop(key, (burst, now))
        tokens = min(burst, tokens + max(0.0, now - at) * rate)
        if tokens >= 1.0:
            self._remember(key, tokens - 1.0, now)
            return 0.0
        self._remember(key, tokens, now)
        return (1.0 - tokens) / rate

    def wait(self, key: str, now: float) -> float:
        """How many seconds until ``key`` has a token (0.0: it has one now); takes none
        and remembers nothing."""
        if not self.limit.enabled or key not in self._buckets:
            return 0.0
        tokens, at = self._buckets[key]
        tokens = min(float(self.limit.burst), tokens + max(0.0, now - at) * self.limit.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.limit.rate

    def __len__(self) -> int:
        """How many buckets are kept."""
        return len(self._buckets)

    def _remember(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        refill_s = self.limit.burst / self.limit.rate
        while self._buckets:
            oldest, (_, at) = next(iter(self._buckets.items()))
            if len(self._buckets) <= self.max_keys and now - at < refill_s:
                break
            del self._buckets[oldest]


def retry_after_header(wait_s: float) -> str:
    """``Retry-After`` is whole seconds: round up, so that a client waiting that long finds
    a token."""
    return str(max(1, math.ceil(wait_s)))
