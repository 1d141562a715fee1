"""Queues from a Config.json in the format of Microsoft's Service Bus emulator, so that one
file declares the queues for both brokers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_DURATION = re.compile(
    r"P(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)


def parse_duration(text: str) -> float:
    """ISO-8601 duration (``PT1M``, ``P14D``, ``PT0.5S``) in seconds."""
    match = _DURATION.fullmatch(text.strip().upper())
    if match is None or text.strip().upper() in {"P", "PT"}:
        raise ValueError(f"{text!r} is not an ISO-8601 duration such as PT1M")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return (
        parts.get("days", 0) * 86400
        + parts.get("hours", 0) * 3600
        + parts.get("minutes", 0) * 60
        + parts.get("seconds", 0)
    )


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """What the broker honours of one queue's properties."""

    name: str
    lock_duration_s: float = 60.0
    max_delivery_count: int = 10
    requires_duplicate_detection: bool = False
    duplicate_window_s: float = 600.0
    ttl_s: float | None = None
    dead_letter_on_expiration: bool = False


def _queue(raw: dict[str, Any]) -> QueueConfig:
    name = raw.get("Name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a queue needs a Name: {raw!r}")
    props = raw.get("Properties") or {}
    ttl = props.get("DefaultMessageTimeToLive")
    return QueueConfig(
        name=name,
        lock_duration_s=parse_duration(props.get("LockDuration", "PT1M")),
        max_delivery_count=int(props.get("MaxDeliveryCount", 10)),
        requires_duplicate_detection=bool(props.get("RequiresDuplicateDetection", False)),
        duplicate_window_s=parse_duration(
            props.get("DuplicateDetectionHistoryTimeWindow", "PT10M")
        ),
        ttl_s=parse_duration(ttl) if ttl else None,
        dead_letter_on_expiration=bool(props.get("DeadLetteringOnMessageExpiration", False)),
    )


def load_config(path: Path) -> dict[str, QueueConfig]:
    """Every queue of every namespace in the file, by lowercase name (Service Bus entity
    names are case-insensitive). Topics are not supported and are ignored."""
    data = json.loads(path.read_text())
    queues: dict[str, QueueConfig] = {}
    for namespace in data.get("UserConfig", {}).get("Namespaces", []):
        for raw in namespace.get("Queues", []):
            queue = _queue(raw)
            queues[queue.name.lower()] = queue
    if not queues:
        raise ValueError(f"{path} declares no queue (UserConfig.Namespaces[].Queues[])")
    return queues


def queue_declaration(
    name: str,
    lock_s: float = 60,
    max_delivery: int = 10,
    dedup: bool = True,
    **properties: Any,
) -> dict[str, Any]:
    """One queue in the Config.json format (for tests and tools that declare queues)."""
    return {
        "Name": name,
        "Properties": {
            "DeadLetteringOnMessageExpiration": False,
            "DefaultMessageTimeToLive": "P14D",
            "DuplicateDetectionHistoryTimeWindow": "PT10M",
            "LockDuration": f"PT{lock_s}S",
            "MaxDeliveryCount": max_delivery,
            "RequiresDuplicateDetection": dedup,
            "RequiresSession": False,
            **properties,
        },
    }


def write_config(path: Path, queues: list[dict[str, Any]]) -> Path:
    """Write a Config.json declaring ``queues``; returns ``path``."""
    config = {
        "UserConfig": {
            "Namespaces": [{"Name": "sbemulatorns", "Queues": queues, "Topics": []}],
            "Logging": {"Type": "File"},
        }
    }
    path.write_text(json.dumps(config, indent=2))
    return path
