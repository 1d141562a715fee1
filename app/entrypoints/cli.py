"""``statsaga`` command line.

- ``dev``: local Azurite, local Service Bus broker and a Ray head, then the ``api`` and
  ``worker`` roles as separate processes (restarted if they die). What ``make run`` runs.
- ``run``: API + worker in one process (dependencies from the settings).
- ``api`` / ``worker``: one role each; several of each share the pools through Ray.
- ``queues``: depths of the saga queues, through Service Bus's administration API (Azure,
  an emulator, or the local broker).
- ``sagas``, ``redrive``, ``invalidate``, ``deadletters``, ``replay``: the operator's
  tools, as in ``/v1/admin`` (straight to storage and the bus, with these settings).
- ``pools``, ``pools resize POOL SIZE``: the actor pools, through the Ray cluster (the
  address from the settings, or the one ``statsaga dev`` wrote in its data directory).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from app.entrypoints import cli_operations, cli_pools, cli_serving
from app.entrypoints.cli_exits import exit_code
from app.entrypoints.cli_settings import configure_logging, load_settings
from app.settings import Settings

log = logging.getLogger("statsaga")

Handler = Callable[[Settings, argparse.Namespace], int]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``statsaga`` command."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # its own options; it starts its own stack, no settings
        from bench.run import main as bench

        return bench(argv[1:])
    args = _parser().parse_args(argv)
    _ray_output_defaults()
    return exit_code(args.command, lambda: _run(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="statsaga", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    cli_serving.add_commands(sub)
    # Parsed by bench itself (main, above): listed here for the help alone.
    sub.add_parser("bench", help="benchmark a local stack (`statsaga bench --help`)")
    cli_operations.add_commands(sub)
    cli_pools.add_commands(sub)
    return parser


def _ray_output_defaults() -> None:
    """Ray's settings for this process and the actors it starts, unless set already."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Actor lines reach this process's output as they are: Ray must neither fold lines
    # that differ only in ids (match ids!) into "[repeated Nx]" nor prefix JSON lines.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if os.environ.get("STATSAGA_LOG_FORMAT", "json").lower() == "json":
        os.environ.setdefault("RAY_DISABLE_WORKER_LOG_PREFIX", "1")


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings, args.command)
    log.debug("settings: %r", settings)  # secrets show as ****, API keys not at all
    handler: Handler = args.handler
    return handler(settings, args)


if __name__ == "__main__":
    raise SystemExit(main())
