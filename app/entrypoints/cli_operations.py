"""The operator's commands, as in ``/v1/admin`` but straight to storage and the bus with
these settings: ``queues``, ``sagas``, ``redrive``, ``invalidate``, ``deadletters``,
``replay``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from app.entrypoints.cli_exits import reported
from app.entrypoints.cli_tables import print_rows
from app.settings import Settings

if TYPE_CHECKING:  # imported when used: the parsers need none of them
    from app.application.operations import Operations

Work = Callable[["Operations", argparse.Namespace], Awaitable[None]]


def add_commands(sub: Any) -> None:
    """The operator's commands' parsers, each with its handler."""
    from app.application.operations import DEAD_LETTER_QUEUES
    from app.domain.saga import SagaState

    queues = sub.add_parser("queues", help="depths of the saga queues (administration API)")
    queues.add_argument("--json", action="store_true", help="JSON instead of a table")
    queues.set_defaults(handler=cmd_queues)
    sagas = sub.add_parser("sagas", help="sagas by state (unfinished ones by default)")
    sagas.add_argument("--state", choices=[s.value for s in SagaState])
    sagas.add_argument("--limit", type=int, default=100)
    sagas.add_argument("--json", action="store_true", help="JSON instead of a table")
    sagas.set_defaults(handler=_operating(_sagas))
    redrive = sub.add_parser("redrive", help="retry a stuck saga, or move a stalled one on")
    redrive.add_argument("match_id")
    redrive.set_defaults(handler=_operating(_redrive))
    invalidate = sub.add_parser("invalidate", help="void a match: compensate every player")
    invalidate.add_argument("match_id")
    invalidate.add_argument("--reason", default="", help="kept in the saga log")
    invalidate.set_defaults(handler=_operating(_invalidate))
    dead = sub.add_parser("deadletters", help="dead letters of the saga queues")
    dead.add_argument("--queue", choices=DEAD_LETTER_QUEUES)
    dead.add_argument("--limit", type=int, default=100)
    dead.add_argument("--json", action="store_true", help="JSON instead of a table")
    dead.set_defaults(handler=_operating(_dead_letters))
    replay = sub.add_parser("replay", help="replay dead letters (all, or --id ones)")
    replay.add_argument("--queue", choices=DEAD_LETTER_QUEUES)
    replay.add_argument("--id", action="append", help="a message id (repeatable)")
    replay.set_defaults(handler=_operating(_replay))


def cmd_queues(settings: Settings, args: argparse.Namespace) -> int:
    """``statsaga queues``: the depths of the saga queues."""
    from app.application.messages import MATCHES_QUEUE, PLAYER_UPDATES_QUEUE
    from app.bootstrap import open_queue_stats
    from app.domain.errors import DomainError

    async def read() -> list[dict[str, Any]]:
        stats = open_queue_stats(settings)
        try:
            depths = await stats.depths([MATCHES_QUEUE, PLAYER_UPDATES_QUEUE])
        finally:
            await stats.close()
        return [{"queue": q, **dataclasses.asdict(d)} for q, d in depths.items()]

    with reported(DomainError):  # unreachable, unknown queue, refused credentials
        rows = asyncio.run(read())
    print_rows(rows, ["queue", "active", "scheduled", "dead_letter"], args.json)
    return 0


def _operating(work: Work) -> Callable[[Settings, argparse.Namespace], int]:
    """A command that does ``work`` with the operator's tools, open for it alone; an
    unknown match, or a request its saga's state refuses, is reported, not a crash."""

    def handler(settings: Settings, args: argparse.Namespace) -> int:
        from app.domain.errors import Conflict, NotFound

        with reported(NotFound, Conflict):
            asyncio.run(_with_operations(settings, lambda ops: work(ops, args)))
        return 0

    return handler


async def _with_operations(
    settings: Settings, work: Callable[[Operations], Awaitable[None]]
) -> None:
    from app.application.operations import Operations
    from app.bootstrap import open_bus
    from storage.tables import open_table_storage

    storage = await open_table_storage(
        settings.storage_connection_string.get_secret_value(), settings.storage_prefix
    )
    bus = open_bus(settings)
    try:
        await work(Operations(storage.sagas, bus))
    finally:
        await bus.close()
        await storage.close()


async def _sagas(ops: Operations, args: argparse.Namespace) -> None:
    from app.domain.saga import SagaState

    state = SagaState(args.state) if args.state else None
    rows = await ops.list_sagas(state, args.limit)
    for row in rows:
        row["players"] = " ".join(f"{k}={v}" for k, v in row["players"].items())
        row["dead"] = ",".join(row["dead"])
    print_rows(rows, ["match_id", "state", "updated_at", "players", "dead"], args.json)


async def _redrive(ops: Operations, args: argparse.Namespace) -> None:
    print(json.dumps(await ops.redrive(args.match_id)))


async def _invalidate(ops: Operations, args: argparse.Namespace) -> None:
    print(json.dumps(await ops.invalidate(args.match_id, args.reason)))


async def _dead_letters(ops: Operations, args: argparse.Namespace) -> None:
    rows = await ops.dead_letters(args.queue, args.limit)
    columns = ["queue", "message_id", "reason", "match_id", "player_id", "description"]
    print_rows(rows, columns, args.json)


async def _replay(ops: Operations, args: argparse.Namespace) -> None:
    report = await ops.replay(args.queue, args.id or None)
    print(json.dumps(report.as_dict(), indent=2))
