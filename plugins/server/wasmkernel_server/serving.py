"""Serving an application under hypercorn's trio worker (`wasmkernel run`).

``workers = 0`` (the default) serves the application already assembled by the
caller in this very process, as hypercorn's own ``--workers 0`` does, with
SIGINT/SIGTERM triggering a graceful shutdown (lifespan shutdown included):
no second interpreter importing and assembling everything again, no parent
holding a copy it never serves. ``workers >= 1`` (or ``reload``) is hypercorn's
process manager: a parent and that many spawned worker processes, each
assembling its own application from the registry (`wasmkernel_server.worker`),
sharing a directory for their metrics (`METRICS_DIR_ENV`).
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

import trio
from hypercorn.config import Config
from hypercorn.run import run
from hypercorn.trio import serve as serve_trio
from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, ASGISendEvent, Framework, Scope
from hypercorn.utils import LifespanFailureError

from wasmkernel import REGISTRY_ENV

if TYPE_CHECKING:
    from wasmkernel import Application

#: Seconds a connection may send nothing (`--read-timeout`). hypercorn's read
#: timeout also runs while a request is being answered (an HTTP/1.1 client sends
#: nothing then): a request that takes longer needs a longer one.
READ_TIMEOUT = 30
#: How long the application's startup may take (seconds).
STARTUP_TIMEOUT = 900.0
#: Where a worker started by `serve` records why its startup failed.
STARTUP_REPORT_ENV = "WASMKERNEL_STARTUP_REPORT"
#: "1" when the server sits behind a reverse proxy (`--behind-proxy`): set by
#: `serve` for itself and its workers (or by hand under plain hypercorn).
BEHIND_PROXY_ENV = "WASMKERNEL_BEHIND_PROXY"
#: prometheus-client's multiprocess directory: `serve` gives its workers a
#: fresh one per run, so that the metrics plugin shows all of them in every
#: scrape (`wasmkernel_metrics.workers`).
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def hypercorn_config(bind: Sequence[str], workers: int = 0, reload: bool = False, read_timeout: int = READ_TIMEOUT) -> Config:
    """How `wasmkernel run` serves (`--bind`, `--workers`, `--reload`, `--read-timeout`)."""
    config = Config()
    config.application_path = "asgi:wasmkernel_server.worker:app"
    config.worker_class = "trio"
    config.bind = list(bind)
    config.workers = max(workers, 1) if reload else workers
    config.use_reloader = reload
    config.keep_alive_timeout = 5.0
    config.read_timeout = read_timeout
    config.graceful_timeout = 5.0
    # Startup compiles WebAssembly the first time (an 18 MB component takes
    # 10-60 s, several take minutes; then cached): hypercorn's 60 s default
    # would kill a first start that is merely slow.
    config.startup_timeout = STARTUP_TIMEOUT
    # WebSocket keep-alive: a ping every 20 s; a peer that sends nothing (not
    # even the pong) for `read_timeout` is dropped.
    config.websocket_ping_interval = 20.0
    # Access lines come from the access-log plugin; errors go through the
    # standard library's logging, which the logging plugin routes to structlog.
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.include_server_header = False
    return config


#: The collector's thresholds once the application has started. Python's
#: default (a young collection every 700 allocations) made collections over
#: every connection's objects more than half the CPU of a WebSocket fan-out
#: (`python -m benchmarks.realtime`).
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """In a serving process, once the application is assembled: move what was
    allocated so far (modules, the application) out of the collector's scans,
    and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def reporting_failed_startup(app: Application) -> ASGIFramework:
    """`app` as a worker started by `serve` serves it: a failed lifespan
    startup writes its reason to $WASMKERNEL_STARTUP_REPORT and ends the
    worker at once (hypercorn 0.18's `run` loses its workers' exit codes, so
    `serve` reads the report instead)."""

    def reporting(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> Awaitable[None]:
        # Not a coroutine function: HTTP and WebSocket calls get the
        # application's own coroutine, no frame of this wrapper (hypercorn is
        # told the mode: "asgi:" in `application_path`).
        async def send_or_report(message: ASGISendEvent) -> None:
            if message["type"] == "lifespan.startup.failed":
                Path(os.environ[STARTUP_REPORT_ENV]).write_text(message["message"], encoding="utf-8")
                os._exit(3)
            await send(message)

        return app(scope, receive, send_or_report if scope["type"] == "lifespan" else send)  # type: ignore[arg-type]

    return reporting


def serve(registry_path: str, config: Config, app: Application, *, behind_proxy: bool = False) -> int:
    """Serve until interrupted; returns the exit code. `app` is the application
    assembled from `registry_path`, served directly when no worker process is asked for."""
    os.environ[REGISTRY_ENV] = os.path.abspath(registry_path)
    if behind_proxy:
        os.environ[BEHIND_PROXY_ENV] = "1"
    if config.workers == 0:
        return serve_in_process(app, config)
    with tempfile.TemporaryDirectory(prefix="wasmkernel-") as folder:
        report = Path(folder) / "startup-failure"
        os.environ[STARTUP_REPORT_ENV] = str(report)
        metrics = Path(folder) / "metrics"
        metrics.mkdir()
        os.environ[METRICS_DIR_ENV] = str(metrics)
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
    tune_gc()
    try:
        trio.run(_serve_until_signalled, app, config)
    except Exception as exc:  # trio hands the failure over inside exception groups
        if not _is_lifespan_failure(exc):
            raise
        print(f"wasmkernel: startup failed: {app.startup_error or exc}", file=sys.stderr)
        return 1
    return 0


def _is_lifespan_failure(exc: BaseException) -> bool:
    return isinstance(exc, LifespanFailureError) or any(_is_lifespan_failure(inner) for inner in getattr(exc, "exceptions", ()))
