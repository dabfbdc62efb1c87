"""Helpers for testing plugins and applications in-process (needs httpx:
``pip install wasmkernel[test]``)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

import httpx
import trio

from kernel.app import Application
from kernel.registry import Registry, parse_registry


def registry_from(plugins: Mapping[str, Mapping[str, Any]], path: str | Path = "test-registry.toml", kernel: Mapping[str, Any] | None = None) -> Registry:
    """A registry from a dict shaped like the TOML ``plugins`` table:
    ``{"router": {}, "health": {"config": {...}}}`` (each enabled by default),
    and optionally the ``[kernel]`` table."""
    return parse_registry({"kernel": dict(kernel or {}), "plugins": {name: dict(table) for name, table in plugins.items()}}, Path(path))


def app_from(plugins: Mapping[str, Mapping[str, Any]], extra_plugins: Mapping[str, Any] | None = None, kernel: Mapping[str, Any] | None = None) -> Application:
    """Assemble an application from `registry_from(plugins, kernel=kernel)`.

    `extra_plugins` maps names to in-memory plugin objects (e.g. a test
    plugin contributing routes); list them in `plugins` too, to place them in
    the order: ``app_from({"router": {}, "t": {}}, extra_plugins={"t": TestRoutes()})``.
    A test of a plugin that only reads routes' auth or schemas without
    enforcing them passes ``kernel={"allow_unenforced": True}``.
    """
    return Application.assemble(registry_from(plugins, kernel=kernel), extra_plugins)


@asynccontextmanager
async def running(app: Application, client: tuple[str, int] = ("127.0.0.1", 50000)) -> AsyncIterator[httpx.AsyncClient]:
    """Start `app` (lifespan startup), yield an httpx client talking to it
    in-process, then shut it down."""
    try:
        async with trio.open_nursery() as nursery:
            try:
                await app.startup(nursery)
                transport = httpx.ASGITransport(app=app, client=client)
                async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                    yield http
            finally:
                with trio.CancelScope(shield=True):
                    await app.shutdown()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # Re-raise a lone error as itself, so tests can match on it.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
