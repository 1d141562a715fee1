"""The serving commands: ``dev`` (the local stack, devstack/supervisor.py), ``run``, ``api``
and ``worker`` (the roles hosted in this process, app/entrypoints/hosting.py)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.entrypoints.cli_settings import with_dev_keys
from app.entrypoints.hosting import serve
from app.runtime.eventloop import run
from app.settings import Settings

log = logging.getLogger("statsaga")
SERVICEBUS_CONFIG = Path(__file__).resolve().parents[2] / "config" / "servicebus.json"


def add_commands(sub: Any) -> None:
    """The serving commands' parsers, each with its handler."""
    dev = sub.add_parser("dev", help="local Azurite, Service Bus broker, Ray head, api and worker")
    dev.add_argument(
        "--free-ports",
        action="store_true",
        help="Azurite and the broker on free ports, not 10000/10002/5672/5300",
    )
    dev.add_argument(
        "--with-parent",
        action="store_true",
        help="stop everything (as on SIGTERM) when the process that started this one dies,\n"
        "even by SIGKILL: what `make run` passes",
    )
    dev.set_defaults(handler=cmd_dev)
    roles = {
        "run": ("API + worker in one process (dependencies from settings)", cmd_run),
        "api": ("the stateless API role: validate, store, publish, read", cmd_api),
        "worker": ("the worker role: consume the queues, run the sagas", cmd_worker),
    }
    for name, (summary, command) in roles.items():
        sub.add_parser(name, help=summary).set_defaults(handler=_settings_only(command))


def _settings_only(
    command: Callable[[Settings], int],
) -> Callable[[Settings, argparse.Namespace], int]:
    return lambda settings, args: command(settings)


# The long-running roles run on uvloop when it is installed (app/runtime/eventloop.py); the
# one-shot operator commands keep asyncio.run, as they spend their time waiting.
def cmd_run(settings: Settings) -> int:
    """``statsaga run``: API + worker in this process."""
    run(serve(with_dev_keys(settings, "run")))
    return 0


def cmd_api(settings: Settings) -> int:
    """``statsaga api``: the API role alone."""
    run(serve(with_dev_keys(settings, "api"), worker=False))
    return 0


def cmd_worker(settings: Settings) -> int:
    """``statsaga worker``: the worker role alone."""
    if not settings.ray_address:
        log.warning("no Ray address: this worker starts an embedded Ray of its own")
    run(serve(settings, api=False))
    return 0


def cmd_dev(settings: Settings, args: argparse.Namespace) -> int:
    """``statsaga dev``: the local stack, until Ctrl-C, SIGTERM or SIGHUP."""
    from app.runtime.lifeline import follow_parent
    from devstack.supervisor import dev_stack

    if args.with_parent:
        follow_parent()
    keyed = with_dev_keys(settings, "dev")
    return dev_stack(keyed, SERVICEBUS_CONFIG, free_ports=args.free_ports)
