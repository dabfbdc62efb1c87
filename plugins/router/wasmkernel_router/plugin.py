"""The router plugin: provides the application's `Router`.

Config: none.
"""

from __future__ import annotations

from collections.abc import Sequence

from wasmkernel import Application, ConfiguredPlugin, NoConfig, Route, hookimpl
from wasmkernel_router.table import RouteTable


class Plugin(ConfiguredPlugin[NoConfig]):
    order = 30
    config_class = NoConfig

    @hookimpl
    def wasmkernel_router(self, routes: Sequence[Route], app: Application) -> RouteTable:
        return RouteTable(routes)
