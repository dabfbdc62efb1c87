"""The kernel's contracts with plugins: errors mapped to statuses at the
boundary, protections as typed keys, the one way to call hooks, typed stash
keys, and importing one kernel module without the whole kernel."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pluggy
import pytest

from wasmkernel import (
    ErrorMapping,
    HTTPError,
    Middleware,
    PluginLoadError,
    Protection,
    Request,
    Route,
    StartupError,
    StashKey,
    hookimpl,
    hookspec,
)
from wasmkernel.testing import app_from, running


class QuotaError(Exception):
    """A plain domain error: no kernel class in its bases."""


class HardQuotaError(QuotaError):
    pass


class Unmapped(Exception):
    pass


class Raiser:
    def __init__(self, mappings: dict[type[Exception], ErrorMapping]) -> None:
        self.mappings = mappings

    @hookimpl
    def wasmkernel_routes(self, app: Any) -> list[Route]:
        errors = {"quota": QuotaError("quota spent"), "hard": HardQuotaError("hard limit"), "other": Unmapped("secret detail")}

        async def fail(request: Request) -> None:
            exc = errors[request.path_params["kind"]]
            exc.retry_after = 7  # type: ignore[attr-defined]
            raise exc

        return [Route("/fail/{kind}", fail)]

    @hookimpl
    def wasmkernel_error_statuses(self, app: Any) -> dict[type[Exception], ErrorMapping]:
        return self.mappings


async def test_plain_exceptions_are_mapped_by_their_mro() -> None:
    mappings: dict[type[Exception], ErrorMapping] = {QuotaError: 429, HardQuotaError: lambda exc: HTTPError(f"no: {exc}", status=403)}
    app = app_from({"router": {}, "raiser": {}}, extra_plugins={"raiser": Raiser(mappings)})
    async with running(app) as client:
        quota = await client.get("/fail/quota")
        hard = await client.get("/fail/hard")
        other = await client.get("/fail/other")
    assert (quota.status_code, quota.json()["detail"], quota.headers["retry-after"]) == (429, "quota spent", "7")
    assert (hard.status_code, hard.json()["detail"]) == (403, "no: hard limit")
    assert other.status_code == 500 and "secret" not in other.text


def test_two_plugins_mapping_one_class_stop_startup() -> None:
    with pytest.raises(StartupError, match="plugins 'a' and 'b' both map QuotaError"):
        app_from({"a": {}, "b": {}}, extra_plugins={"a": Raiser({QuotaError: 429}), "b": Raiser({QuotaError: 503})})


CSRF: Protection[str] = Protection("CSRF checks", hint="enable csrf-guard")


class CsrfRoutes:
    @hookimpl
    def wasmkernel_routes(self, app: Any) -> list[Route]:
        return [Route("/form", lambda request: "ok", methods=["POST"], stash={CSRF: "strict"})]


class CsrfGuard:
    def __init__(self) -> None:
        self.policies: list[str | None] = []

    @hookimpl
    def wasmkernel_middleware(self, app: Any) -> list[Middleware]:
        def wrap(next_handler: Any, route: Route | None) -> Any:
            self.policies.append(route.stash.get(CSRF) if route is not None else None)
            return next_handler

        return [Middleware("csrf-guard", wrap, enforces=frozenset({CSRF}))]


def test_a_plugin_owned_protection_nothing_enforces_stops_startup_with_its_hint() -> None:
    with pytest.raises(StartupError, match="route 'POST /form' of plugin 'routes' declares CSRF checks no enabled plugin enforces: enable csrf-guard"):
        app_from({"router": {}, "routes": {}}, extra_plugins={"routes": CsrfRoutes()})
    guard = CsrfGuard()
    app_from({"router": {}, "routes": {}, "guard": {}}, extra_plugins={"routes": CsrfRoutes(), "guard": guard})
    assert "strict" in guard.policies


class Specs:
    @hookspec
    def wasmkernel_colour(self, app: Any) -> str:  # type: ignore[empty-body]
        """A colour."""


class Palette:
    order = 0

    @hookimpl
    def wasmkernel_addhooks(self, pluginmanager: pluggy.PluginManager) -> None:
        pluginmanager.add_hookspecs(Specs)


class Painter:
    def __init__(self, colour: str, order: int, fail: bool = False) -> None:
        self.colour, self.order, self.fail = colour, order, fail

    @hookimpl
    def wasmkernel_colour(self, app: Any) -> str:
        if self.fail:
            raise RuntimeError("no paint")
        return self.colour


def test_hooks_are_called_in_plugin_order_with_their_plugins() -> None:
    """pluggy alone calls the last registered plugin first."""
    painters = {"red": Painter("red", 1), "green": Painter("green", 2), "blue": Painter("blue", 3)}
    app = app_from({"palette": {}, **{name: {} for name in painters}}, extra_plugins={"palette": Palette(), **painters})
    assert [(plugin.name, colour) for plugin, colour in app.hooks.each("wasmkernel_colour")] == [("red", "red"), ("green", "green"), ("blue", "blue")]
    assert app.hooks.first("wasmkernel_colour") == "red"
    red = next(plugin for plugin in app.plugins if plugin.name == "red")
    assert app.hooks.call(red, "wasmkernel_colour") == (True, "red")
    assert "wasmkernel_colour" in app.hooks.implemented_by(red)
    failing = app_from({"palette": {}, "red": {}, "bad": {}}, extra_plugins={"palette": Palette(), "red": Painter("red", 1), "bad": Painter("x", 2, fail=True)})
    with pytest.raises(PluginLoadError, match="plugin 'bad' failed in wasmkernel_colour: RuntimeError: no paint"):
        failing.hooks.each("wasmkernel_colour")


def test_stash_keys_are_typed_and_compared_by_identity() -> None:
    a, b = StashKey[int]("count"), StashKey[int]("count")
    route = Route("/x", lambda request: None, stash={a: 1})
    route.stash[b] = 2
    assert (route.stash[a], route.stash[b], route.stash.get(StashKey[int]("other"), 0)) == (1, 2, 0)


def test_importing_one_kernel_module_does_not_import_the_kernel() -> None:
    probe = (
        "import sys, wasmkernel.registry, wasmkernel.services; print(sorted({'pluggy', 'trio', 'structlog', 'hypercorn', 'wasmkernel.app'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_lazy_exports_match_what_type_checkers_see() -> None:
    """`wasmkernel/__init__.py` lists its names twice (for type checkers, and
    for `__getattr__`): both lists agree, and every name resolves."""
    import ast
    from pathlib import Path

    import wasmkernel

    tree = ast.parse(Path(wasmkernel.__file__).read_text())
    checked = next(node for node in tree.body if isinstance(node, ast.If))
    imports = [node for node in checked.body if isinstance(node, ast.ImportFrom) and node.module]
    static = {alias.name: str(node.module).removeprefix("wasmkernel.") for node in imports for alias in node.names}
    assert static == wasmkernel._MODULE_OF
    assert all(getattr(wasmkernel, name) is not None for name in wasmkernel.__all__)


def test_hypercorn_finds_the_entry_point(tmp_path: Any) -> None:
    """hypercorn evaluates ``app`` in `wasmkernel.asgi`'s namespace: the entry point is a real attribute."""
    import os

    registry = tmp_path / "registry.toml"
    registry.write_text("[plugins.router]\n")
    probe = "from hypercorn.utils import load_application; print(type(load_application('wasmkernel.asgi:app', 0)).__name__)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env={**os.environ, "WASMKERNEL_REGISTRY": str(registry)})
    assert done.stdout.strip() == "ASGIWrapper", done.stdout + done.stderr
