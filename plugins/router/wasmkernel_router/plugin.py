"""The router plugin: provides the application's `Router`.

Config: none.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from kernel import Application, ConfiguredPlugin, Route, hookimpl
from wasmkernel_router.table import RouteTable


@attrs.frozen
class Config:
    """The router takes no options yet; unknown keys are refused."""


class Plugin(ConfiguredPlugin[Config]):
    order = 30
    config_class = Config

    @hookimpl
    def wasmkernel_router(self, routes: Sequence[Route], app: Application) -> RouteTable:
        return RouteTable(routes)
