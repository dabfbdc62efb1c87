"""Serving an application under hypercorn's trio worker.

``workers = 0`` (the default) serves the application already assembled by the
caller in this very process, as hypercorn's own ``--workers 0`` does, with
SIGINT/SIGTERM triggering a graceful shutdown (lifespan shutdown included):
no second interpreter importing and assembling everything again, no parent
holding a copy it never serves. ``workers >= 1`` (or ``reload``) is hypercorn's
process manager: a parent and that many spawned worker processes, each
assembling its own application from the registry.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, cast

import attrs
import trio
from hypercorn.config import Config
from hypercorn.run import run
from hypercorn.trio import serve as serve_trio
from hypercorn.typing import Framework
from hypercorn.utils import LifespanFailureError

from kernel.registry import REGISTRY_ENV

if TYPE_CHECKING:
    from kernel.app import Application

APPLICATION_PATH = "kernel.asgi:app"
#: Seconds a connection may send nothing (`--read-timeout`). hypercorn's read
#: timeout also runs while a request is being answered (an HTTP/1.1 client sends
#: nothing then): a request that takes longer needs a longer one.
READ_TIMEOUT = 30
#: Where a worker started by `serve` records why its startup failed.
STARTUP_REPORT_ENV = "WASMKERNEL_STARTUP_REPORT"


@attrs.frozen
class ServerOptions:
    """How `wasmkernel run` serves (`--bind`, `--workers`, `--reload`)."""

    bind: tuple[str, ...] = ("127.0.0.1:8000",)
    workers: int = 0
    reload: bool = False
    keep_alive_timeout: float = 5.0
    read_timeout: int = READ_TIMEOUT
    graceful_timeout: float = 5.0
    #: WebSocket keep-alive: hypercorn pings every connection this often; a
    #: peer that sends nothing (not even the pong) for `read_timeout` is dropped.
    websocket_ping_interval: float = 20.0


def hypercorn_config(options: ServerOptions) -> Config:
    config = Config()
    config.application_path = APPLICATION_PATH
    config.worker_class = "trio"
    config.bind = list(options.bind)
    config.workers = max(options.workers, 1) if options.reload else options.workers
    config.use_reloader = options.reload
    config.keep_alive_timeout = options.keep_alive_timeout
    config.read_timeout = options.read_timeout
    config.graceful_timeout = options.graceful_timeout
    config.websocket_ping_interval = options.websocket_ping_interval
    # Access lines come from the access-log plugin; errors go through the
    # standard library's logging, which the logging plugin routes to structlog.
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.include_server_header = False
    return config


def report_startup_failure(reason: str) -> None:
    """In a worker started by `serve`: record why startup failed and end the
    worker at once. (hypercorn 0.18's `run` loses its workers' exit codes, so
    `serve` reads the record instead.) Elsewhere: nothing."""
    path = os.environ.get(STARTUP_REPORT_ENV)
    if path:
        Path(path).write_text(reason, encoding="utf-8")
        os._exit(3)


def serve(registry_path: str, options: ServerOptions, app: Application) -> int:
    """Serve until interrupted; returns the exit code. `app` is the application
    assembled from `registry_path`, served directly when no worker process is asked for."""
    os.environ[REGISTRY_ENV] = os.path.abspath(registry_path)
    config = hypercorn_config(options)
    if config.workers == 0:
        return serve_in_process(app, config)
    with tempfile.TemporaryDirectory(prefix="wasmkernel-") as folder:
        report = Path(folder) / "startup-failure"
        os.environ[STARTUP_REPORT_ENV] = str(report)
        code = run(config)
        if report.exists():
            print(f"wasmkernel: startup failed: {report.read_text(encoding='utf-8')}", file=sys.stderr)
            return 1
    return code


async def _serve_until_signalled(app: Application, config: Config) -> None:
    """Serve; the first SIGINT/SIGTERM (even one during startup) shuts down gracefully."""
    stop = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for _ in signals:
                    stop.set()
                    return

            nursery.start_soon(watch)
            await serve_trio(cast(Framework, app), config, shutdown_trigger=stop.wait)
            nursery.cancel_scope.cancel()


def serve_in_process(app: Application, config: Config) -> int:
    """hypercorn's trio server on `app` in this process; a failed startup exits 1 with its reason."""
    config.workers = 1  # hypercorn.trio.serve serves one process: this one
    try:
        trio.run(_serve_until_signalled, app, config)
    except Exception as exc:  # trio hands the failure over inside exception groups
        failure = _lifespan_failure(exc)
        if failure is None:
            raise
        print(f"wasmkernel: startup failed: {app.startup_error or failure}", file=sys.stderr)
        return 1
    return 0


def _lifespan_failure(exc: BaseException) -> LifespanFailureError | None:
    if isinstance(exc, LifespanFailureError):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _lifespan_failure(inner)
        if found is not None:
            return found
    return None
