"""Latency samples and their percentiles (nearest rank: a reported p99 is a latency that
was really observed)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

PERCENTILES = (50, 95, 99)


def percentile(samples: list[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile of ``samples`` (which must not be empty)."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(math.ceil(p / 100 * len(ordered)), 1)
    return ordered[rank - 1]


@dataclass
class Latencies:
    """Durations in seconds."""

    samples: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        """Record one."""
        self.samples.append(seconds)

    def summary(self) -> dict[str, Any]:
        """Count, p50/p95/p99 and max in milliseconds (``None`` with no samples)."""
        if not self.samples:
            return {"count": 0, **{f"p{p}_ms": None for p in PERCENTILES}, "max_ms": None}
        ms = {f"p{p}_ms": round(percentile(self.samples, p) * 1000, 1) for p in PERCENTILES}
        return {"count": len(self.samples), **ms, "max_ms": round(max(self.samples) * 1000, 1)}
