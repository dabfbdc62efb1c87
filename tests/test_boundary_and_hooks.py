"""The kernel's contracts with plugins: errors mapped to statuses at the
boundary, protections as typed keys, the one way to call hooks, typed stash
keys, and importing one kernel module without the whole kernel."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pluggy
import pytest
import structlog.testing
import trio

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
    StreamingResponse,
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


class BrokenStream:
    """A route whose streamed body fails after its first chunk, with a mapped or an unmapped error."""

    @hookimpl
    def wasmkernel_routes(self, app: Any) -> list[Route]:
        async def stream(request: Request) -> StreamingResponse:
            async def chunks() -> AsyncIterator[bytes]:
                yield b"first"
                raise QuotaError("body quota spent") if request.path_params["kind"] == "quota" else Unmapped("secret detail")

            return StreamingResponse(chunks())

        return [Route("/stream/{kind}", stream)]

    @hookimpl
    def wasmkernel_error_statuses(self, app: Any) -> dict[type[Exception], ErrorMapping]:
        return {QuotaError: 429}


async def _messages(app: Any, path: str) -> list[dict[str, Any]]:
    """The ASGI messages the application sends for `GET path` (no client library: it would refuse a cut-off body)."""
    sent: list[dict[str, Any]] = []
    scope: dict[str, Any] = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http", "path": path}
    scope |= {"raw_path": path.encode(), "query_string": b"", "headers": [], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async with trio.open_nursery() as nursery:
        await app.startup(nursery)
        try:
            await app(scope, receive, send)
        finally:
            await app.shutdown()
    return sent


@pytest.mark.parametrize(("kind", "event", "traceback"), [("quota", "response.cut_off", False), ("other", "response.send_failed", True)])
async def test_a_streamed_body_failing_midway_is_cut_off_and_logged_by_kind(kind: str, event: str, traceback: bool) -> None:
    """After the head went out nothing can be answered: the body stops unfinished. A mapped
    (expected) error is one warning without traceback; an unexpected one is logged as a crash."""
    app = app_from({"router": {}, "broken": {}}, extra_plugins={"broken": BrokenStream()})
    with structlog.testing.capture_logs() as logs:
        sent = await _messages(app, f"/stream/{kind}")
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"] and sent[-1]["more_body"] is True
    found = [entry for entry in logs if entry["event"] in ("response.cut_off", "response.send_failed")]
    assert [entry["event"] for entry in found] == [event]
    assert found[0].get("exc_info", False) is traceback
    if not traceback:
        assert (found[0]["log_level"], found[0]["reason"]) == ("warning", "body quota spent")


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
