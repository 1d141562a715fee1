"""The api and worker roles hosted in this process (``statsaga run``, ``api``,
``worker``): joined to Ray, wired by the composition root, served until SIGINT or SIGTERM,
then stopped gracefully."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from app.runtime.eventloop import loop_name
from app.settings import Settings

if TYPE_CHECKING:  # imported when used: the operator's commands need none of them
    import uvicorn

    from app.bootstrap import Runtime
    from app.observability.metrics import Metrics

log = logging.getLogger("statsaga")


async def serve(settings: Settings, *, api: bool = True, worker: bool = True) -> None:
    """Run the chosen roles until SIGINT/SIGTERM; then stop gracefully: the API stops
    accepting, the worker finishes the messages it holds, clients close."""
    from app.bootstrap import build_runtime
    from app.observability.metrics import Metrics

    metrics = Metrics(api=api, worker=worker)
    # Before Ray: a taken port fails the start at once.
    stop_metrics = serve_worker_metrics(settings, metrics) if not api else None
    joining = await _join_ray(settings, worker)
    runtime = await build_runtime(settings, api=api, worker=worker, metrics=metrics)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Ray's driver turns SIGTERM into sys.exit; take both signals back for a graceful stop.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    server = http_server(settings, runtime) if api and runtime.service is not None else None
    tasks = _start(runtime, server)
    _say_up(settings, api, worker, server is not None, stop_metrics is not None)
    try:
        await stopping.wait()
    finally:
        await _stop(runtime, server, tasks)
        if joining is not None:
            joining.cancel()
        await runtime.close()
        _stop_ray()
        if stop_metrics is not None:
            stop_metrics()


async def _join_ray(settings: Settings, worker: bool) -> asyncio.Task[None] | None:
    """A worker joins Ray (or starts one) before it runs; an api process joins in the
    background, when it can."""
    from app.bootstrap import join_ray

    if worker:
        await join_ray(settings, create_pools=True)
    elif settings.ray_address:
        return asyncio.create_task(_join_ray_when_possible(settings))
    else:
        log.warning("no Ray address: this api process serves POSTs, but reads answer 503")
    return None


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


def _start(runtime: Runtime, server: uvicorn.Server | None) -> list[asyncio.Task[None]]:
    """The worker's loop, the sweepers and the HTTP server, each a task."""
    tasks: list[asyncio.Task[None]] = []
    if runtime.worker is not None:
        tasks.append(asyncio.create_task(runtime.worker.run()))
    tasks += [asyncio.create_task(sweeper.run()) for sweeper in runtime.sweepers]
    if server is not None:
        tasks.append(asyncio.create_task(server.serve()))
    return tasks


def _say_up(settings: Settings, api: bool, worker: bool, http: bool, metrics: bool) -> None:
    roles = "+".join(r for r, on in (("api", api), ("worker", worker)) if on)
    where = f" on http://{settings.host}:{settings.port}" if http else ""
    if metrics:
        where += f" (metrics on http://{settings.host}:{settings.metrics_port}/metrics)"
    log.info("statsaga %s is up%s (pid %d, %s loop)", roles, where, os.getpid(), loop_name())


async def _stop(
    runtime: Runtime, server: uvicorn.Server | None, tasks: list[asyncio.Task[None]]
) -> None:
    """Tell each task to stop, and wait for them all."""
    if server is not None:
        server.should_exit = True
    if runtime.worker is not None:
        runtime.worker.stop()
    for sweeper in runtime.sweepers:
        sweeper.stop()
    await asyncio.gather(*tasks, return_exceptions=True)


def serve_worker_metrics(settings: Settings, metrics: Metrics) -> Callable[[], None] | None:
    """A worker run without the API serves its metrics on a port of its own."""
    from app.observability.metrics import serve_metrics

    if not settings.metrics_port:
        return None
    try:
        return serve_metrics(metrics.registry, settings.host, settings.metrics_port)
    except OSError as exc:
        raise SystemExit(
            f"statsaga worker: cannot serve metrics on {settings.host}:{settings.metrics_port} "
            f"({exc}); set STATSAGA_METRICS_PORT to a free port, or to 0 to turn them off"
        ) from exc


def http_server(settings: Settings, runtime: Runtime) -> uvicorn.Server:
    """The API's HTTP server, bounded by the settings; it stops when told to, not on
    signals of its own."""
    import uvicorn

    from app.entrypoints.api import create_app
    from app.entrypoints.http_protocol import BoundedHttpToolsProtocol

    assert runtime.service is not None and runtime.operations is not None
    app = create_app(
        settings,
        runtime.service,
        runtime.operations,
        runtime.readiness,
        runtime.pools,
        runtime.metrics,
        runtime.boards,
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
        # Signals are ours (serve, above): the server stops when told to.
        def install_signal_handlers(self) -> None:
            pass

    return _Server(config)


def _stop_ray() -> None:
    """Leave Ray: an embedded Ray stops with its actors; on a cluster the detached pools
    stay, since they belong to the deployment, not to this process."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
