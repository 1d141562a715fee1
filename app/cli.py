"""``statsaga`` command line.

- ``dev``: local Azurite, local Service Bus broker and a Ray head, then the ``api`` and
  ``worker`` roles as separate processes (restarted if they die). What ``make run`` runs.
- ``run``: API + worker in one process (dependencies from the settings).
- ``api`` / ``worker``: one role each; several of each share the pools through Ray.
- ``queues``: depths of the local broker's queues.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app.settings import Role, Settings, parse_api_keys

if TYPE_CHECKING:  # imported when used: `statsaga queues` needs neither
    import uvicorn

    from app.bootstrap import Runtime

log = logging.getLogger("statsaga")
DEV_KEYS_FILE = "dev-keys.env"
SERVICEBUS_CONFIG = Path(__file__).resolve().parent.parent / "config" / "servicebus.json"


def _dev_keys(settings: Settings) -> Settings:
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
    print(f"No STATSAGA_API_KEYS set: using development keys kept in {path}:", flush=True)
    for key, role in keys.items():
        print(f"  {role.value:<7} Authorization: Bearer {key}", flush=True)
    print(
        "Set STATSAGA_API_KEYS=KEY:ROLE,... (roles ingest, read, admin) to use your own.",
        flush=True,
    )
    return settings.model_copy(update={"api_keys": keys})


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

    joining: asyncio.Task[None] | None = None
    if worker:
        await join_ray(settings, create_pools=True)
    elif settings.ray_address:
        joining = asyncio.create_task(_join_ray_when_possible(settings))
    else:
        log.warning("no Ray address: this api process serves POSTs, but reads answer 503")
    runtime = await build_runtime(settings, api=api, worker=worker)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Ray's driver turns SIGTERM into sys.exit; take both signals back for a graceful stop.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    tasks: list[asyncio.Task[None]] = []
    if runtime.worker is not None:
        tasks.append(asyncio.create_task(runtime.worker.run()))
    if runtime.sweeper is not None:
        tasks.append(asyncio.create_task(runtime.sweeper.run()))
    server = None
    if api and runtime.service is not None:
        server = _http_server(settings, runtime)
        tasks.append(asyncio.create_task(server.serve()))
    roles = "+".join(r for r, on in (("api", api), ("worker", worker)) if on)
    where = f" on http://{settings.host}:{settings.port}" if server else ""
    print(f"statsaga {roles} is up{where} (pid {os.getpid()})", flush=True)
    try:
        await stopping.wait()
    finally:
        if server is not None:
            server.should_exit = True
        if runtime.worker is not None:
            runtime.worker.stop()
        if runtime.sweeper is not None:
            runtime.sweeper.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        if joining is not None:
            joining.cancel()
        await runtime.close()
        _stop_ray()


def _http_server(settings: Settings, runtime: Runtime) -> uvicorn.Server:
    import uvicorn

    from app.api import create_app

    assert runtime.service is not None
    app = create_app(settings, runtime.service, runtime.readiness)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        lifespan="off",
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


def _cmd_run(settings: Settings) -> int:
    asyncio.run(serve(_dev_keys(settings)))
    return 0


def _cmd_api(settings: Settings) -> int:
    asyncio.run(serve(_dev_keys(settings), worker=False))
    return 0


def _cmd_worker(settings: Settings) -> int:
    if not settings.ray_address:
        log.warning("no Ray address: this worker starts an embedded Ray of its own")
    asyncio.run(serve(settings, api=False))
    return 0


def _cmd_dev(settings: Settings) -> int:
    from app.devstack import dev_stack

    return dev_stack(_dev_keys(settings), SERVICEBUS_CONFIG)


def _cmd_queues(settings: Settings) -> int:
    from sbemu.depths import format_depths, queue_depths

    data = Path(settings.data_dir).resolve() / "servicebus"
    if not data.exists():
        print(f"no local broker data in {data} (start it with `statsaga dev`)", file=sys.stderr)
        return 1
    print(format_depths(queue_depths(data)))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``statsaga`` command."""
    parser = argparse.ArgumentParser(
        prog="statsaga", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="local Azurite, Service Bus broker, Ray head, api and worker")
    sub.add_parser("run", help="API + worker in one process (dependencies from settings)")
    sub.add_parser("api", help="the stateless API role: validate, store, publish, read")
    sub.add_parser("worker", help="the worker role: consume the queues, run the sagas")
    sub.add_parser("queues", help="queue depths of the local broker (statsaga dev)")
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # The Azure SDKs log every HTTP request and AMQP frame at INFO: debugging detail here.
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("azure").setLevel(logging.WARNING)
    commands = {
        "dev": _cmd_dev,
        "run": _cmd_run,
        "api": _cmd_api,
        "worker": _cmd_worker,
        "queues": _cmd_queues,
    }
    with contextlib.suppress(KeyboardInterrupt):
        return commands[args.command](settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
