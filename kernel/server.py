"""Serving an application under hypercorn's trio worker."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

import attrs
from hypercorn.config import Config
from hypercorn.run import run

from kernel.registry import REGISTRY_ENV

APPLICATION_PATH = "kernel.asgi:app"
#: Where a worker started by `serve` records why its startup failed.
STARTUP_REPORT_ENV = "WASMKERNEL_STARTUP_REPORT"


@attrs.frozen
class ServerOptions:
    """How `wasmkernel run` serves (`--bind`, `--workers`, `--reload`)."""

    bind: tuple[str, ...] = ("127.0.0.1:8000",)
    workers: int = 1
    reload: bool = False
    keep_alive_timeout: float = 5.0
    read_timeout: int = 30
    graceful_timeout: float = 5.0


def hypercorn_config(options: ServerOptions) -> Config:
    config = Config()
    config.application_path = APPLICATION_PATH
    config.worker_class = "trio"
    config.bind = list(options.bind)
    config.workers = options.workers
    config.use_reloader = options.reload
    config.keep_alive_timeout = options.keep_alive_timeout
    config.read_timeout = options.read_timeout
    config.graceful_timeout = options.graceful_timeout
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


def serve(registry_path: str, options: ServerOptions) -> int:
    """Run hypercorn (trio worker) until interrupted; returns the exit code:
    non-zero, with the reason on one line, when a worker failed to start.

    Each worker process imports `kernel.asgi`, which assembles its own
    application from the registry passed through the environment.
    """
    os.environ[REGISTRY_ENV] = os.path.abspath(registry_path)
    with tempfile.TemporaryDirectory(prefix="wasmkernel-") as folder:
        report = Path(folder) / "startup-failure"
        os.environ[STARTUP_REPORT_ENV] = str(report)
        code = run(hypercorn_config(options))
        if report.exists():
            print(f"wasmkernel: startup failed: {report.read_text(encoding='utf-8')}", file=sys.stderr)
            return 1
    return code
