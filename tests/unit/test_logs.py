"""Structured logs: the JSON line, bound context, isolation between tasks, secrets."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from app.observability.logs import REDACTED, bind, bound, configure_logging, connection_secrets


class Logs:
    """What ``configure_logging`` wrote to its stream, line by line."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]


@pytest.fixture
def configured() -> Iterator[Any]:
    """``configure(level, fmt, secrets)`` → the lines logged; the root logger restored."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("azure").level

    def configure(level: str = "DEBUG", fmt: str = "json", secrets: tuple[str, ...] = ()) -> Logs:
        stream = io.StringIO()
        configure_logging(level, fmt, "tester", secrets, stream=stream)  # type: ignore[arg-type]
        return Logs(stream)

    yield configure
    handlers, level, azure_level = saved
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("azure").setLevel(azure_level)


log = logging.getLogger("statsaga.test")


def test_a_line_is_one_json_object_with_the_core_fields(configured: Any) -> None:
    logs = configured()
    log.info("saga %s -> %s", "running", "completed", extra={"players": 8})
    [line] = logs.records()
    assert line["level"] == "INFO"
    assert line["logger"] == "statsaga.test"
    assert line["msg"] == "saga running -> completed"
    assert line["players"] == 8
    assert line["process"] == f"tester/{os.getpid()}"
    assert "exc" not in line
    ts = datetime.fromisoformat(line["ts"])
    assert ts.utcoffset() is not None and ts.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert line["ts"].endswith("Z")


def test_bound_fields_are_on_every_line_inside_the_block_only(configured: Any) -> None:
    logs = configured()
    with bind(match_id="m-1"):
        log.info("outer")
        with bind(player_id="p-1", message_id=None):  # None: not bound
            log.info("inner")
            assert bound() == {"match_id": "m-1", "player_id": "p-1"}
        log.info("outer again")
    log.info("outside")
    got = [(r["msg"], r.get("match_id"), r.get("player_id")) for r in logs.records()]
    assert got == [
        ("outer", "m-1", None),
        ("inner", "m-1", "p-1"),
        ("outer again", "m-1", None),
        ("outside", None, None),
    ]
    assert "message_id" not in logs.records()[1]


def test_an_explicit_extra_wins_over_the_bound_field(configured: Any) -> None:
    logs = configured()
    with bind(player_id="bound"):
        log.info("x", extra={"player_id": "given"})
    assert logs.records()[0]["player_id"] == "given"


@pytest.mark.parametrize("reserved", ["msg", "level", "process", "ts", "name", "exc_info"])
def test_core_fields_cannot_be_bound_over(reserved: str) -> None:
    # Bound over, they would corrupt the line rather than label it.
    with pytest.raises(ValueError, match=reserved), bind(**{reserved: "x"}):
        pass


async def test_concurrent_tasks_each_log_their_own_match(configured: Any) -> None:
    logs = configured()
    both_bound = asyncio.Barrier(2)

    async def saga(match_id: str) -> None:
        with bind(match_id=match_id):
            await both_bound.wait()  # both contexts are bound at once from here on
            for step in range(3):
                log.info("step %d of %s", step, match_id)
                await asyncio.sleep(0)

    await asyncio.gather(saga("m-a"), saga("m-b"))
    records = logs.records()
    assert len(records) == 6
    for r in records:
        assert r["msg"].endswith(r["match_id"]), r
    assert bound() == {}  # nothing leaked into the caller's context


async def test_a_task_inherits_its_creator_s_fields_without_leaking_back(
    configured: Any,
) -> None:
    logs = configured()

    async def child() -> None:
        with bind(player_id="p-9"):
            log.info("child")

    with bind(match_id="m-2"):
        await asyncio.create_task(child())
        log.info("parent")
    got = [(r["msg"], r.get("match_id"), r.get("player_id")) for r in logs.records()]
    assert got == [("child", "m-2", "p-9"), ("parent", "m-2", None)]


def test_an_exception_goes_under_exc_in_the_same_line(configured: Any) -> None:
    logs = configured()
    try:
        raise RuntimeError("storage said no")
    except RuntimeError:
        with bind(match_id="m-3"):
            log.exception("step failed")
    [line] = logs.lines()  # the traceback is inside the JSON, not on lines of its own
    record = json.loads(line)
    assert record["level"] == "ERROR" and record["match_id"] == "m-3"
    assert "Traceback" in record["exc"] and "RuntimeError: storage said no" in record["exc"]


def test_a_field_that_is_not_json_is_written_as_text(configured: Any) -> None:
    logs = configured()
    log.info("odd", extra={"when": datetime(2026, 1, 2)})
    [record] = logs.records()
    assert record["when"] == "2026-01-02 00:00:00"


def test_text_format_is_readable_and_keeps_the_fields(configured: Any) -> None:
    logs = configured(fmt="text")
    with bind(match_id="m-4", player_id="p-4"):
        log.warning("player failed")
    [line] = logs.lines()
    assert " WARNING " in line and "statsaga.test: player failed" in line
    assert "match_id=m-4" in line and "player_id=p-4" in line
    assert line.startswith("20") and not line.startswith("{")


def test_the_level_filters(configured: Any) -> None:
    logs = configured(level="WARNING")
    log.info("hidden")
    log.warning("shown")
    assert [r["msg"] for r in logs.records()] == ["shown"]


def test_configuring_again_replaces_the_handler(configured: Any) -> None:
    first = configured()
    second = configured()
    log.info("once")
    assert first.lines() == [] and len(second.lines()) == 1


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_secrets_are_redacted_wherever_they_appear(configured: Any, fmt: str) -> None:
    key = "ingest-Zq8v3LmN0pR"
    logs = configured(fmt=fmt, secrets=(key, "AccKey+/=="))
    log.info("header was Bearer %s", key, extra={"keys": {key: "ingest"}})
    with bind(match_id=f"m-{key}"):
        log.debug("string AccountKey=AccKey+/==;")
    text = "\n".join(logs.lines())
    assert key not in text and "AccKey+/==" not in text
    assert text.count(REDACTED) >= 4


def test_short_values_are_not_taken_for_secrets(configured: Any) -> None:
    # The local broker's key is "local": replacing it everywhere would garble lines.
    logs = configured(secrets=("local", ""))
    log.info("Started a local Ray instance.")
    assert logs.records()[0]["msg"] == "Started a local Ray instance."


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_the_azure_sdks_are_quiet_unless_debugging(configured: Any, level: str) -> None:
    logs = configured(level=level)
    logging.getLogger("azure.core.pipeline").info("Request URL: ...")
    assert len(logs.lines()) == (1 if level == "DEBUG" else 0)


def test_connection_string_secrets_are_the_key_values() -> None:
    storage = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=abc/def==;"
        "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
    )
    bus = "Endpoint=sb://localhost;SharedAccessKeyName=Root;SharedAccessKey=s3cr3t=;UseDev=true"
    assert connection_secrets(storage) == ["abc/def=="]
    assert connection_secrets(bus) == ["s3cr3t="]
    assert connection_secrets("") == []
