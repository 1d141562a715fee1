"""Parsing STATSAGA_FAULTS."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.domain.faults import FaultPlan, parse_faults
from app.settings import Settings


def test_empty_injects_nothing() -> None:
    assert parse_faults("") == FaultPlan()
    assert not parse_faults(" , ").active


def test_every_key_parses_and_round_trips() -> None:
    plan = parse_faults("storage=0.1, latency_ms=20,actor_kill=0.01,lost_settlement=0.2,seed=7")
    assert plan == FaultPlan(
        storage=0.1, latency_ms=20, actor_kill=0.01, lost_settlement=0.2, seed=7
    )
    assert plan.active
    assert parse_faults(plan.spec()) == plan


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("storage=2", "storage"),
        ("storage=-0.1", "storage"),
        ("latency_ms=1.5", "latency_ms"),
        ("seed=x", "seed"),
        ("disk=0.1", "disk"),
        ("storage", "storage"),
        ("actor_kill=1.1", "actor_kill"),
        ("lost_settlement=-1", "lost_settlement"),
    ],
)
def test_a_bad_entry_names_its_key(spec: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        parse_faults(spec)


def test_the_setting_refuses_a_bad_spec_naming_the_key() -> None:
    with pytest.raises(ValidationError, match="disk"):
        Settings(faults="disk=0.5")
    assert Settings(faults="storage=0.2,seed=1").fault_plan == FaultPlan(storage=0.2, seed=1)


@pytest.mark.parametrize("key", ["storage", "actor_kill", "lost_settlement"])
def test_each_rate_alone_makes_the_plan_active(key: str) -> None:
    assert parse_faults(f"{key}=0.01").active
