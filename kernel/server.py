"""Serving an application under hypercorn's trio worker."""

from __future__ import annotations

import logging
import os

import attrs
from hypercorn.config import Config
from hypercorn.run import run

from kernel.registry import REGISTRY_ENV

APPLICATION_PATH = "kernel.asgi:app"


@attrs.frozen
class ServerOptions:
    """How `wasmkernel run` serves (`--bind`, `--workers`, `--reload`)."""

    bind: tuple[str, ...] = ("127.0.0.1:8000",)
    workers: int = 1
    reload: bool = False
    keep_alive_timeout: float = 5.0
    read_timeout: int = 30
    graceful_timeout: float = 5.0
    #: WebSocket keep-alive: hypercorn pings every connection this often; a
    #: peer that sends nothing (not even the pong) for `read_timeout` is dropped.
    websocket_ping_interval: float = 20.0


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
    config.websocket_ping_interval = options.websocket_ping_interval
    # Access lines come from the access-log plugin; errors go through the
    # standard library's logging, which the logging plugin routes to structlog.
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.include_server_header = False
    return config


def serve(registry_path: str, options: ServerOptions) -> int:
    """Run hypercorn (trio worker) until interrupted; returns its exit code.

    Each worker process imports `kernel.asgi`, which assembles its own
    application from the registry passed through the environment.
    """
    os.environ[REGISTRY_ENV] = os.path.abspath(registry_path)
    return run(hypercorn_config(options))
