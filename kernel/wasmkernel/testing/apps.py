"""Applications assembled from a registry written as a dict."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wasmkernel import Application, Registry
from wasmkernel.registry import parse_registry


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


def as_app(
    app: Application | Mapping[str, Mapping[str, Any]], extra_plugins: Mapping[str, Any] | None = None, kernel: Mapping[str, Any] | None = None
) -> Application:
    """`app` itself, or the application `app_from` assembles from it."""
    if isinstance(app, Application):
        if extra_plugins is not None or kernel is not None:
            raise TypeError("extra_plugins and kernel apply to a registry dict, not to an assembled Application")
        return app
    return app_from(app, extra_plugins, kernel)
