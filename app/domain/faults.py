"""The fault-injection plan: what ``STATSAGA_FAULTS`` asks for, parsed and checked.

``"storage=0.1,latency_ms=20,actor_kill=0.01,lost_settlement=0.05,seed=7"``: every key
is optional; an empty string injects nothing. Off by default; meant for ``make run`` and
the chaos tests, so that anyone can watch recovery happen.

- ``storage``: share of Azure Storage requests that fail (half before sending, half with
  the answer lost after the change was made);
- ``latency_ms``: added to every storage request;
- ``actor_kill``: chance that a PlayerShard or GameActor call kills its actor's process
  after doing its work and before answering (Ray restarts it);
- ``lost_settlement``: share of the worker's message completions that never reach the
  broker (the message comes back when its lock expires);
- ``seed``: makes the storage faults reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

_RATES = ("storage", "actor_kill", "lost_settlement")


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Rates are probabilities per call (0 to 1); ``latency_ms`` is added to each storage call."""

    storage: float = 0.0
    latency_ms: int = 0
    actor_kill: float = 0.0
    lost_settlement: float = 0.0
    seed: int | None = None

    @property
    def active(self) -> bool:
        """True when anything is injected."""
        return any(getattr(self, r) > 0 for r in _RATES) or self.latency_ms > 0

    def spec(self) -> str:
        """Back to the ``key=value,…`` form (to hand to other processes)."""
        parts = [f"{f.name}={getattr(self, f.name)}" for f in fields(self)]
        return ",".join(p for p in parts if not p.endswith("=None"))


def parse_faults(text: str) -> FaultPlan:
    """Parse a fault spec; ``ValueError`` names the key that is wrong."""
    values: dict[str, float | int] = {}
    known = {f.name for f in fields(FaultPlan)}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, raw = (s.strip() for s in item.partition("="))
        if not sep or key not in known:
            raise ValueError(
                f"fault {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(known))}"
            )
        try:
            number = float(raw)
        except ValueError:
            raise ValueError(f"fault {key}: {raw!r} is not a number") from None
        if key in _RATES and not 0.0 <= number <= 1.0:
            raise ValueError(f"fault {key}: a rate must be between 0 and 1, got {raw}")
        if key in ("latency_ms", "seed"):
            if number != int(number) or number < 0:
                raise ValueError(f"fault {key}: must be a whole number >= 0, got {raw}")
            values[key] = int(number)
        else:
            values[key] = number
    return FaultPlan(**values)  # type: ignore[arg-type]
