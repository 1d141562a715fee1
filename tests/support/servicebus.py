"""Queue declarations for test brokers: the project's queues with test-friendly lock
durations, in the Config.json format both brokers read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sbemu.config import queue_declaration as queue
from sbemu.config import write_config

__all__ = ["PROJECT_CONFIG", "project_queues", "queue", "write_config"]

PROJECT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "servicebus.json"


def project_queues(lock_s: int = 60) -> list[dict[str, Any]]:
    """The project's queues (``config/servicebus.json``) with another lock duration."""
    declared = json.loads(PROJECT_CONFIG.read_text())["UserConfig"]["Namespaces"][0]["Queues"]
    return [
        queue(
            q["Name"],
            lock_s,
            int(q["Properties"]["MaxDeliveryCount"]),
            bool(q["Properties"]["RequiresDuplicateDetection"]),
        )
        for q in declared
    ]
