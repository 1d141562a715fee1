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
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from app.dev_endpoints import DEV_RAY_FILE
from app.eventloop import loop_name, run
from app.settings import Role, Settings, parse_api_keys

if TYPE_CHECKING:  # imported when used: `statsaga queues` needs neither
    import uvicorn

    from app.bootstrap import Runtime
    from app.metrics import Metrics
    from app.operations import Operations

log = logging.getLogger("statsaga")
DEV_KEYS_FILE = "dev-keys.env"
SERVICEBUS_CONFIG = Path(__file__).resolve().parent.parent / "config" / "servicebus.json"


def _configure_logging(settings: Settings, role: str) -> None:
    from app.logs import configure_logging, connection_secrets

    secrets = [
        *settings.api_keys,
        *connection_secrets(settings.storage_connection_string.get_secret_value()),
        *connection_secrets(settings.servicebus_connection_string.get_secret_value()),
    ]
    configure_logging(settings.log_level, settings.log_format, role, secrets)


def _dev_keys(settings: Settings, role: str) -> Settings:
    """With no keys configured, use (and keep) a generated set, and print it."""
    if settings.api_keys:
        return settings
    path = Path(settings.data_dir) / DEV_KEYS_FILE
    if path.exists():
        raw = path.read_text().strip().partition("=")[2]
    else:
        raw = ",".join(f"{role.value}-{secrets.token_urlsafe(12)}:{role.value}" for role in Role)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"STATSAGA_API_KEYS={raw}\n")
        path.chmod(0o600)
    keys = parse_api_keys(raw)
    settings = settings.model_copy(update={"api_keys": keys})
    _configure_logging(settings, role)  # the new keys are redacted too
    print(f"No STATSAGA_API_KEYS set: using development keys kept in {path}:", flush=True)
    for key, key_role in keys.items():
        print(f"  {key_role.value:<7} Authorization: Bearer {key}", flush=True)
    print(
        "Set STATSAGA_API_KEYS=KEY:ROLE,... (roles ingest, read, admin) to use your own.",
        flush=True,
    )
    return settings


async def _join_ray_when_possible(settings: Settings) -> None:
    """The api role reads through the grains, so it joins Ray; until it can, reads answer
    503 while POSTs keep working."""
    from app.bootstrap import join_ray

    while True:
        try:
            await join_ray(settings, create_pools=False)
            log.info("joined Ray at %s", settings.ray_address)
            return
        except Exception as exc:
            log.warning("cannot join Ray at %s yet (%s); retrying", settings.ray_address, exc)
            await asyncio.sleep(5.0)


async def serve(settings: Settings, *, api: bool = True, worker: bool = True) -> None:
    """Run the chosen roles until SIGINT/SIGTERM; then stop gracefully: the API stops
    accepting, the worker finishes the messages it holds, clients close."""
    from app.bootstrap import build_runtime, join_ray
    from app.metrics import Metrics

    metrics = Metrics(api=api, worker=worker)
    # Before Ray: a taken port fails the start at once.
    stop_metrics = _serve_worker_metrics(settings, metrics) if not api else None
    joining: asyncio.Task[None] | None = None
    if worker:
        await join_ray(settings, create_pools=True)
    elif settings.ray_address:
        joining = asyncio.create_task(_join_ray_when_possible(settings))
    else:
        log.warning("no Ray address: this api process serves POSTs, but reads answer 503")
    runtime = await build_runtime(settings, api=api, worker=worker, metrics=metrics)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Ray's driver turns SIGTERM into sys.exit; take both signals back for a graceful stop.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    tasks: list[asyncio.Task[None]] = []
    if runtime.worker is not None:
        tasks.append(asyncio.create_task(runtime.worker.run()))
    tasks += [asyncio.create_task(sweeper.run()) for sweeper in runtime.sweepers]
    server = None
    if api and runtime.service is not None:
        server = _http_server(settings, runtime)
        tasks.append(asyncio.create_task(server.serve()))
    roles = "+".join(r for r, on in (("api", api), ("worker", worker)) if on)
    where = f" on http://{settings.host}:{settings.port}" if server else ""
    if stop_metrics is not None:
        where += f" (metrics on http://{settings.host}:{settings.metrics_port}/metrics)"
    log.info("statsaga %s is up%s (pid %d, %s loop)", roles, where, os.getpid(), loop_name())
    try:
        await stopping.wait()
    finally:
        if server is not None:
            server.should_exit = True
        if runtime.worker is not None:
            runtime.worker.stop()
        for sweeper in runtime.sweepers:
            sweeper.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        if joining is not None:
            joining.cancel()
        await runtime.close()
        _stop_ray()
        if stop_metrics is not None:
            stop_metrics()


def _serve_worker_metrics(settings: Settings, metrics: Metrics) -> Callable[[], None] | None:
    """A worker run without the API serves its metrics on a port of its own."""
    from app.metrics import serve_metrics

    if not settings.metrics_port:
        return None
    try:
        return serve_metrics(metrics.registry, settings.host, settings.metrics_port)
    except OSError as exc:
        raise SystemExit(
            f"statsaga worker: cannot serve metrics on {settings.host}:{settings.metrics_port} "
            f"({exc}); set STATSAGA_METRICS_PORT to a free port, or to 0 to turn them off"
        ) from exc


def _http_server(settings: Settings, runtime: Runtime) -> uvicorn.Server:
    import uvicorn

    from app.api import create_app
    from app.http_protocol import BoundedHttpToolsProtocol

    assert runtime.service is not None and runtime.operations is not None
    app = create_app(
        settings,
        runtime.service,
        runtime.operations,
        runtime.readiness,
        runtime.pools,
        runtime.metrics,
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # no handlers of its own: its records go through ours
        access_log=settings.access_log,
        lifespan="off",
        # Bounds on what clients can hold open: a flood of connections or of idle
        # keep-alives, or endless headers, must not exhaust the process.
        limit_concurrency=settings.http_limit_concurrency,
        timeout_keep_alive=settings.http_keep_alive_s,
        backlog=settings.http_backlog,
        # httptools, with the bound on a request's head that h11 has and it lacks (the
        # setting keeps h11's name).
        http=BoundedHttpToolsProtocol,
        h11_max_incomplete_event_size=settings.http_max_header_bytes,
    )

    class _Server(uvicorn.Server):
        # Signals are ours (above): the server stops when told to.
        def install_signal_handlers(self) -> None:
            pass

    return _Server(config)


def _stop_ray() -> None:
    """Leave Ray: an embedded Ray stops with its actors; on a cluster the detached pools
    stay, since they belong to the deployment, not to this process."""
    import ray

    if ray.is_initialized():
        ray.shutdown()


# The long-running roles run on uvloop when it is installed (app/eventloop.py); the
# one-shot operator commands below keep asyncio.run, as they spend their time waiting.
def _cmd_run(settings: Settings) -> int:
    run(serve(_dev_keys(settings, "run")))
    return 0


def _cmd_api(settings: Settings) -> int:
    run(serve(_dev_keys(settings, "api"), worker=False))
    return 0


def _cmd_worker(settings: Settings) -> int:
    if not settings.ray_address:
        log.warning("no Ray address: this worker starts an embedded Ray of its own")
    run(serve(settings, api=False))
    return 0


def _cmd_dev(settings: Settings, free_ports: bool = False, with_parent: bool = False) -> int:
    from app.devsupervisor import dev_stack
    from app.lifeline import follow_parent

    if with_parent:
        follow_parent()

    return dev_stack(_dev_keys(settings, "dev"), SERVICEBUS_CONFIG, free_ports=free_ports)


def _cmd_queues(settings: Settings, args: argparse.Namespace) -> int:
    from app.bootstrap import open_queue_stats
    from app.domain.errors import DomainError
    from app.messages import MATCHES_QUEUE, PLAYER_UPDATES_QUEUE

    async def read() -> list[dict[str, Any]]:
        stats = open_queue_stats(settings)
        try:
            depths = await stats.depths([MATCHES_QUEUE, PLAYER_UPDATES_QUEUE])
        finally:
            await stats.close()
        return [{"queue": q, **dataclasses.asdict(d)} for q, d in depths.items()]

    try:
        rows = asyncio.run(read())
    except DomainError as exc:  # unreachable, unknown queue, refused credentials
        print(f"statsaga queues: {exc}", file=sys.stderr)
        return 1
    _print_rows(rows, ["queue", "active", "scheduled", "dead_letter"], args.json)
    return 0


async def _with_operations(settings: Settings, work: Callable[[Operations], Awaitable[Any]]) -> Any:
    from app.bootstrap import open_bus
    from app.operations import Operations
    from storage.tables import open_table_storage

    storage = await open_table_storage(
        settings.storage_connection_string.get_secret_value(), settings.storage_prefix
    )
    bus = open_bus(settings)
    try:
        return await work(Operations(storage.sagas, bus))
    finally:
        await bus.close()
        await storage.close()


def _print_rows(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print("(none)")
        return
    cells = [[str(row.get(c) if row.get(c) is not None else "") for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


def _cmd_ops(settings: Settings, args: argparse.Namespace) -> int:
    from app.domain.errors import Conflict, NotFound
    from app.domain.saga import SagaState

    async def work(ops: Operations) -> int:
        match args.command:
            case "sagas":
                state = SagaState(args.state) if args.state else None
                rows = await ops.list_sagas(state, args.limit)
                for row in rows:
                    row["players"] = " ".join(f"{k}={v}" for k, v in row["players"].items())
                    row["dead"] = ",".join(row["dead"])
                columns = ["match_id", "state", "updated_at", "players", "dead"]
                _print_rows(rows, columns, args.json)
            case "redrive":
                print(json.dumps(await ops.redrive(args.match_id)))
            case "invalidate":
                print(json.dumps(await ops.invalidate(args.match_id, args.reason)))
            case "deadletters":
                rows = await ops.dead_letters(args.queue, args.limit)
                columns = ["queue", "message_id", "reason", "match_id", "player_id", "description"]
                _print_rows(rows, columns, args.json)
            case "replay":
                report = await ops.replay(args.queue, args.id or None)
                print(json.dumps(report.as_dict(), indent=2))
        return 0

    try:
        result: int = asyncio.run(_with_operations(settings, work))
        return result
    except (NotFound, Conflict) as exc:
        print(f"statsaga {args.command}: {exc}", file=sys.stderr)
        return 1


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


def _cmd_pools(settings: Settings, args: argparse.Namespace) -> int:
    # Before Ray is imported: it reads its token settings (RAY_AUTH_*) when it loads.
    address = _ray_address(settings)
    from actors.pools import RayPoolAdmin, init_ray
    from app.domain.errors import TransientError

    if not address:
        print(
            "statsaga pools: no Ray cluster to join: set STATSAGA_RAY_ADDRESS (or RAY_ADDRESS), "
            f"or start `statsaga dev` (it writes {Path(settings.data_dir) / DEV_RAY_FILE})",
            file=sys.stderr,
        )
        return 2
    try:
        init_ray(address, settings.ray_namespace)
    except ConnectionError as exc:  # a head that is gone (a stale .data/ray.env, say)
        print(f"statsaga pools: cannot join the Ray cluster at {address}: {exc}", file=sys.stderr)
        return 1
    admin = RayPoolAdmin(settings.ray_namespace)
    try:
        if args.action == "resize":
            from app.domain.placement import size_problem

            problem = size_problem(args.pool, args.size, settings.max_pool_size)
            if problem:
                print(f"statsaga pools resize: {problem}", file=sys.stderr)
                return 2
            print(f"resizing the {args.pool} pool to {args.size} ...", file=sys.stderr)
            described = asyncio.run(admin.resize(args.pool, args.size))
        else:
            described = asyncio.run(admin.describe())
    except TransientError as exc:
        print(f"statsaga pools: {exc}", file=sys.stderr)
        return 1
    if getattr(args, "json", False):
        print(json.dumps(described, indent=2))
        return 0
    print(f"placement v{described['version']} (updated {described['updated_at']})")
    if described.get("last_resize"):
        print(f"last resize: {json.dumps(described['last_resize'])}")
    for pool, view in described["pools"].items():
        print(f"\n{pool} pool: {view['size']} members")
        rows = [{**m, "node_id": str(m.get("node_id", ""))[:12]} for m in view["members"]]
        columns = ["index", "node_id", "pid", "calls_in_flight"]
        if pool == "player":
            columns += ["active", "activations", "deactivations", "queued", "capacity"]
        else:
            # Its sagas' player batches, and the shard calls that carried them.
            columns += ["saga_calls", "shard_batches", "shard_calls"]
        _print_rows(rows, [*columns, "error"], as_json=False)
    return 0


def _add_pools_command(sub: Any) -> None:
    pools = sub.add_parser("pools", help="the actor pools (show, or `pools resize POOL SIZE`)")
    pools.add_argument("--json", action="store_true", help="JSON instead of tables")
    actions = pools.add_subparsers(dest="action")
    resize = actions.add_parser("resize", help="resize a pool while the service runs")
    resize.add_argument("pool", choices=["game", "player"])
    resize.add_argument("size", type=int)
    resize.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="JSON instead of tables"
    )


def _add_ops_commands(sub: Any) -> None:
    from app.domain.saga import SagaState
    from app.operations import DEAD_LETTER_QUEUES

    sagas = sub.add_parser("sagas", help="sagas by state (unfinished ones by default)")
    sagas.add_argument("--state", choices=[s.value for s in SagaState])
    sagas.add_argument("--limit", type=int, default=100)
    sagas.add_argument("--json", action="store_true", help="JSON instead of a table")
    redrive = sub.add_parser("redrive", help="retry a stuck saga, or move a stalled one on")
    redrive.add_argument("match_id")
    invalidate = sub.add_parser("invalidate", help="void a match: compensate every player")
    invalidate.add_argument("match_id")
    invalidate.add_argument("--reason", default="", help="kept in the saga log")
    dead = sub.add_parser("deadletters", help="dead letters of the saga queues")
    dead.add_argument("--queue", choices=DEAD_LETTER_QUEUES)
    dead.add_argument("--limit", type=int, default=100)
    dead.add_argument("--json", action="store_true", help="JSON instead of a table")
    replay = sub.add_parser("replay", help="replay dead letters (all, or --id ones)")
    replay.add_argument("--queue", choices=DEAD_LETTER_QUEUES)
    replay.add_argument("--id", action="append", help="a message id (repeatable)")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``statsaga`` command."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # its own options; it starts its own stack, no settings
        from bench.run import main as bench

        return bench(argv[1:])
    parser = argparse.ArgumentParser(
        prog="statsaga", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
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
    sub.add_parser("run", help="API + worker in one process (dependencies from settings)")
    sub.add_parser("api", help="the stateless API role: validate, store, publish, read")
    sub.add_parser("worker", help="the worker role: consume the queues, run the sagas")
    sub.add_parser("bench", help="benchmark a local stack (`statsaga bench --help`)")
    queues = sub.add_parser("queues", help="depths of the saga queues (administration API)")
    queues.add_argument("--json", action="store_true", help="JSON instead of a table")
    _add_ops_commands(sub)
    _add_pools_command(sub)
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Actor lines reach this process's output as they are: Ray must neither fold lines
    # that differ only in ids (match ids!) into "[repeated Nx]" nor prefix JSON lines.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if os.environ.get("STATSAGA_LOG_FORMAT", "json").lower() == "json":
        os.environ.setdefault("RAY_DISABLE_WORKER_LOG_PREFIX", "1")
    try:
        settings = Settings()
    except ValidationError as error:
        # A configuration mistake, not a crash: each refused setting on a line of its own.
        print("statsaga: invalid settings", file=sys.stderr)
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"]) or "settings"
            print(f"  {where}: {problem['msg']}", file=sys.stderr)
        return 2
    _configure_logging(settings, args.command)
    log.debug("settings: %r", settings)  # secrets show as ****, API keys not at all
    commands = {
        "run": _cmd_run,
        "api": _cmd_api,
        "worker": _cmd_worker,
    }
    with contextlib.suppress(KeyboardInterrupt):
        if args.command == "pools":
            return _cmd_pools(settings, args)
        if args.command == "queues":
            return _cmd_queues(settings, args)
        if args.command == "dev":
            return _cmd_dev(settings, args.free_ports, args.with_parent)
        if args.command not in commands:
            return _cmd_ops(settings, args)
        return commands[args.command](settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
