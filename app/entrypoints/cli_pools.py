"""``statsaga pools`` and ``pools resize POOL SIZE``: the actor pools (game, player and
board), through the Ray cluster (the address from the settings, or the one ``statsaga
dev`` wrote in its data directory)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from app.dev_endpoints import DEV_RAY_FILE
from app.domain.placement import POOLS
from app.entrypoints.cli_exits import CommandFailed, CommandMisused, reported
from app.entrypoints.cli_tables import print_rows
from app.settings import Settings


def add_commands(sub: Any) -> None:
    """The pools command's parser, with its handler."""
    pools = sub.add_parser("pools", help="the actor pools (show, or `pools resize POOL SIZE`)")
    pools.add_argument("--json", action="store_true", help="JSON instead of tables")
    pools.set_defaults(handler=cmd_pools)
    actions = pools.add_subparsers(dest="action")
    resize = actions.add_parser("resize", help="resize a pool while the service runs")
    resize.add_argument("pool", choices=list(POOLS))
    resize.add_argument("size", type=int)
    resize.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="JSON instead of tables"
    )


def cmd_pools(settings: Settings, args: argparse.Namespace) -> int:
    """Show the pools, or resize one; as JSON with ``--json``."""
    _join(settings)  # before Ray's actors are looked up
    from actors.pools import RayPoolAdmin
    from app.domain.errors import TransientError

    admin = RayPoolAdmin(settings.ray_namespace)
    with reported(TransientError):
        if args.action == "resize":
            from app.domain.placement import size_problem

            problem = size_problem(args.pool, args.size, settings.max_pool_size)
            if problem:
                raise CommandMisused(problem, command="pools resize")
            print(f"resizing the {args.pool} pool to {args.size} ...", file=sys.stderr)
            described = asyncio.run(admin.resize(args.pool, args.size))
        else:
            described = asyncio.run(admin.describe())
    if getattr(args, "json", False):
        print(json.dumps(described, indent=2))
    else:
        _print_pools(described)
    return 0


def _join(settings: Settings) -> None:
    """Join the cluster the settings or a running ``statsaga dev`` name."""
    # Before Ray is imported: it reads its token settings (RAY_AUTH_*) when it loads.
    address = _ray_address(settings)
    from actors.pools import init_ray

    if not address:
        raise CommandMisused(
            "no Ray cluster to join: set STATSAGA_RAY_ADDRESS (or RAY_ADDRESS), "
            f"or start `statsaga dev` (it writes {Path(settings.data_dir) / DEV_RAY_FILE})"
        )
    try:
        init_ray(address, settings.ray_namespace)
    except ConnectionError as exc:  # a head that is gone (a stale .data/ray.env, say)
        raise CommandFailed(f"cannot join the Ray cluster at {address}: {exc}") from exc


def _ray_address(settings: Settings) -> str | None:
    """The cluster to join: the settings', else the one a running `statsaga dev` wrote."""
    if settings.ray_address:
        return settings.ray_address
    path = Path(settings.data_dir) / DEV_RAY_FILE
    if not path.exists():
        return None
    for line in path.read_text().splitlines():
        name, _, value = line.partition("=")
        if name.startswith("RAY_"):
            os.environ[name] = value
    return os.environ.get("RAY_ADDRESS")


# Each pool's own columns, after the ones every member has.
_COLUMNS = {
    "player": ["active", "activations", "deactivations", "queued", "capacity"],
    # Its sagas' player batches, and the shard calls that carried them.
    "game": ["saga_calls", "shard_batches", "shard_calls"],
    # The modes it holds, whether it is rebuilding some, and what it saved or handed over.
    "board": ["modes", "rebuilding", "snapshots_saved", "modes_handed_over"],
}


def _print_pools(described: dict[str, Any]) -> None:
    print(f"placement v{described['version']} (updated {described['updated_at']})")
    if described.get("last_resize"):
        print(f"last resize: {json.dumps(described['last_resize'])}")
    for pool, view in described["pools"].items():
        print(f"\n{pool} pool: {view['size']} members")
        rows = [_row(m) for m in view["members"]]
        columns = ["index", "node_id", "pid", "calls_in_flight", *_COLUMNS.get(pool, [])]
        print_rows(rows, [*columns, "error"], as_json=False)


def _row(member: dict[str, Any]) -> dict[str, Any]:
    row = {**member, "node_id": str(member.get("node_id", ""))[:12]}
    if isinstance(member.get("modes"), dict):  # a board member's: their names will do
        row["modes"] = ",".join(sorted(member["modes"])) or "-"
    return row
