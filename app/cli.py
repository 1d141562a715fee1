"""``statsaga`` command line: ``dev`` (with local Azurite), ``run`` (all roles in one process)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sys
from pathlib import Path

from app.settings import Role, Settings, parse_api_keys

log = logging.getLogger("statsaga")
DEV_KEYS_FILE = "dev-keys.env"
# Azurite's usual ports, so that tools such as Azure Storage Explorer find it.
DEV_BLOB_PORT, DEV_TABLE_PORT = 10000, 10002


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


async def serve(settings: Settings) -> None:
    """API and worker in this process, until SIGINT/SIGTERM; then a graceful stop."""
    import uvicorn

    from app.api import create_app
    from app.bootstrap import build_runtime

    runtime = await build_runtime(settings)
    app = create_app(settings, runtime.service, runtime.readiness)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            access_log=False,
            lifespan="off",
        )
    )
    worker = asyncio.create_task(runtime.worker.run())
    print(f"statsaga is up on http://{settings.host}:{settings.port} (Ctrl-C stops it)", flush=True)
    try:
        await server.serve()  # returns on SIGINT/SIGTERM (uvicorn handles both)
    finally:
        runtime.worker.stop()
        await worker
        await runtime.close()
        _stop_ray()


def _stop_ray() -> None:
    """Leave Ray: an embedded Ray stops with its actors; on a cluster the detached pools
    stay, since they belong to the deployment, not to this process."""
    import ray

    if ray.is_initialized():
        ray.shutdown()


def _cmd_run(settings: Settings) -> int:
    asyncio.run(serve(_dev_keys(settings)))
    return 0


def _cmd_dev(settings: Settings) -> int:
    from app.devstack import start_azurite

    data = Path(settings.data_dir).resolve()
    print(f"Starting Azurite (data in {data / 'azurite'}) ...", flush=True)
    azurite = start_azurite(
        data / "azurite", DEV_BLOB_PORT, DEV_TABLE_PORT, log=data / "azurite.log"
    )
    print(
        f"Azurite pid {azurite.proc.pid}: blob :{azurite.blob_port}, table :{azurite.table_port}",
        flush=True,
    )
    try:
        settings = settings.model_copy(
            update={
                "storage_connection_string": type(settings.storage_connection_string)(
                    azurite.connection_string
                )
            }
        )
        return _cmd_run(settings)
    except KeyboardInterrupt:
        return 0
    finally:
        azurite.stop()
        print("Azurite stopped.", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``statsaga`` command."""
    parser = argparse.ArgumentParser(prog="statsaga", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="start local Azurite, then everything in one process")
    sub.add_parser("run", help="API + worker + actor pools in one process (storage from settings)")
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # The Azure SDKs log every HTTP request at INFO; that is debugging detail here.
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("azure").setLevel(logging.WARNING)
    commands = {"dev": _cmd_dev, "run": _cmd_run}
    return commands[args.command](settings)


if __name__ == "__main__":
    raise SystemExit(main())
