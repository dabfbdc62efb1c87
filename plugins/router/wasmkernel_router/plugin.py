"""The router plugin: provides the application's `Router`.

Config: none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from kernel import Application, Route, hookimpl, parse_config
from wasmkernel_router.table import RouteTable


@attrs.frozen
class Config:
    """The router takes no options yet; unknown keys are refused."""


class Plugin:
    @hookimpl
    def wasmkernel_configure(self, config: Mapping[str, Any], app: Application) -> None:
        parse_config(Config, config)

    @hookimpl
    def wasmkernel_router(self, routes: Sequence[Route], app: Application) -> RouteTable:
        return RouteTable(routes)
