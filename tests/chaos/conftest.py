"""Chaos runs: real Azurite, a real Ray head, the local Service Bus broker, and separate
``api`` and ``worker`` processes (``start_scenario``, shared with the e2e tests), with
faults injected through ``STATSAGA_FAULTS`` and by killing processes."""

from __future__ import annotations

from tests.e2e.conftest import FAST_RECOVERY, Scenario, StartScenario, start_scenario

__all__ = ["FAST_RECOVERY", "Scenario", "StartScenario", "start_scenario"]
