"""The kernel's plugin contract beyond routes: services between plugins,
plugins' own hooks, declared ordering and requirements, the one error
boundary, and routes whose protections nothing enforces."""

from __future__ import annotations

import subprocess
import types
from pathlib import Path
from typing import Any

import pluggy
import pytest

from wasmkernel import (
    Application,
    AuthRequirement,
    Handler,
    Middleware,
    PluginLoadError,
    RegistryError,
    Request,
    Response,
    Route,
    ServiceKey,
    StartupError,
    TextResponse,
    Unauthorized,
    hookimpl,
    hookspec,
)
from wasmkernel.cli import main
from wasmkernel.testing import BIN, app_from, project_root, running

CLOCK: ServiceKey[list[str]] = ServiceKey("clock", hint="enable the clock plugin")

#: The built-in plugins every application has, last (their orders are 90 and up).
BUILT_IN = ["scaffold", "introspect", "server"]


class Provider:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    @hookimpl
    def wasmkernel_services(self, app: Application) -> list[tuple[ServiceKey[Any], Any]]:
        return [(CLOCK, self.events)]

    @hookimpl
    def wasmkernel_startup(self, app: Application) -> None:
        self.events.append("provider started")

    @hookimpl
    def wasmkernel_shutdown(self, app: Application) -> None:
        self.events.append("provider stopped")


class Consumer:
    def __init__(self) -> None:
        self.clock: list[str] | None = None

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        self.clock = app.services.get(CLOCK, needed_by="consumer")
        return []

    @hookimpl
    def wasmkernel_startup(self, app: Application) -> None:
        assert self.clock is not None
        self.clock.append("consumer started")

    @hookimpl
    def wasmkernel_shutdown(self, app: Application) -> None:
        assert self.clock is not None
        self.clock.append("consumer stopped")


async def test_a_provider_starts_before_and_stops_after_its_consumers() -> None:
    events: list[str] = []
    # Listed first, and ordered first: only the service makes the provider start earlier.
    app = app_from({"consumer": {"order": -5}, "provider": {}}, extra_plugins={"consumer": Consumer(), "provider": Provider(events)})
    assert [p.name for p in app.plugins] == ["consumer", "provider", *BUILT_IN]
    assert [p.name for p in app.startup_order()] == ["provider", "consumer", *BUILT_IN]
    async with running(app):
        pass
    assert events == ["provider started", "consumer started", "consumer stopped", "provider stopped"]


def test_a_missing_service_names_who_needs_it_and_what_to_enable() -> None:
    with pytest.raises(StartupError, match="plugin 'consumer' needs a clock: enable the clock plugin"):
        app_from({"consumer": {}}, extra_plugins={"consumer": Consumer()})


def test_two_providers_of_one_service_are_refused() -> None:
    with pytest.raises(StartupError, match="plugins 'a' and 'b' both offer a clock: enable only one"):
        app_from({"a": {}, "b": {}}, extra_plugins={"a": Provider([]), "b": Provider([])})


def test_find_is_for_optional_services() -> None:
    app = app_from({"a": {}}, extra_plugins={"a": Provider(["x"])})
    assert app.services.find(CLOCK) == ["x"]
    assert app_from({}).services.find(CLOCK) is None


# -- a plugin's own hooks ---------------------------------------------------------


class GreetingSpecs:
    @hookspec
    def wasmkernel_greetings(self, app: Application) -> list[str]:  # type: ignore[empty-body]
        """Contribute greetings (a hook a plugin adds)."""


class Greeter:
    """Adds the `wasmkernel_greetings` hook and serves what others contribute."""

    @hookimpl
    def wasmkernel_addhooks(self, pluginmanager: pluggy.PluginManager) -> None:
        pluginmanager.add_hookspecs(GreetingSpecs)

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        greetings = sorted(g for _, g in app.hooks.gather("wasmkernel_greetings"))
        return [Route("/greetings", lambda request: greetings)]


class Friendly:
    @hookimpl(optionalhook=True)
    def wasmkernel_greetings(self, app: Application) -> list[str]:
        return ["hello"]


async def test_a_plugin_adds_hooks_that_other_plugins_implement() -> None:
    # The implementing plugin is registered before the one adding the spec.
    app = app_from({"friendly": {"order": -1}, "greeter": {}, "router": {}}, extra_plugins={"greeter": Greeter(), "friendly": Friendly()})
    async with running(app) as client:
        assert (await client.get("/greetings")).json() == ["hello"]
    # Without the plugin that adds it, an optional implementation is harmless.
    app_from({"friendly": {}}, extra_plugins={"friendly": Friendly()})


def test_an_unknown_hook_is_a_startup_error_naming_the_plugin() -> None:
    typo = types.SimpleNamespace()

    @hookimpl
    def wasmkernel_rootes(app: Application) -> None:  # the typo
        pass

    typo.wasmkernel_rootes = wasmkernel_rootes
    with pytest.raises(PluginLoadError, match="plugin 'typo' implements an unknown hook"):
        app_from({"typo": {}}, extra_plugins={"typo": typo})


# -- ordering and requirements ------------------------------------------------------


class Placed:
    """A plugin declaring only the placement keys it is given."""

    def __init__(self, **declared: Any) -> None:
        for key, value in declared.items():
            setattr(self, key, value)


def test_plugins_declare_their_order_and_the_registry_overrides_it() -> None:
    plugins = {"a": Placed(order=5), "b": Placed(after=("c",)), "c": Placed(order=9)}
    app = app_from({"a": {}, "b": {}, "c": {}}, extra_plugins=plugins)
    assert [p.name for p in app.plugins] == ["a", "c", "b", *BUILT_IN]
    assert {p.name: dict(p.entry.sources) for p in app.plugins[:3]} == {
        "a": {"order": "plugin"},
        "b": {"after": "plugin"},
        "c": {"order": "plugin"},
    }
    overridden = app_from({"a": {"order": 10}, "b": {"after": []}, "c": {}}, extra_plugins=plugins)
    assert [p.name for p in overridden.plugins] == ["b", "c", "a", *BUILT_IN]
    assert overridden.plugins[0].entry.sources == {"after": "registry"}


def test_a_cycle_names_where_each_constraint_comes_from() -> None:
    with pytest.raises(RegistryError, match=r"cycle between: a, b — a: before=\['b'\] .*before from plugin.*b: .*after=\['a'\] .*after from registry"):
        app_from({"a": {}, "b": {"after": ["a"], "before": ["a"]}}, extra_plugins={"a": Placed(before=("b",)), "b": Placed()})


def test_a_required_plugin_is_brought_in_or_named() -> None:
    app = app_from({"needy": {}}, extra_plugins={"needy": Placed(requires=("router",))})
    assert [p.name for p in app.plugins] == ["needy", "router", *BUILT_IN]
    with pytest.raises(PluginLoadError, match=r"plugin 'needy' requires plugin 'router', which .* disables: enable it or disable 'needy'"):
        app_from({"needy": {}, "router": {"enabled": False}}, extra_plugins={"needy": Placed(requires=("router",))})
    with pytest.raises(
        PluginLoadError, match="plugin 'needy' requires plugin 'nowhere', which is not installed; install it with: pip install wasmkernel-nowhere"
    ):
        app_from({"needy": {}}, extra_plugins={"needy": Placed(requires=("nowhere",))})


# -- the error boundary and enforced protections --------------------------------------


class Observer:
    """A middleware that records what reaches it: always a response."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []

    @hookimpl
    def wasmkernel_middleware(self, app: Application) -> list[Middleware]:
        return [Middleware("observer", self.wrap)]

    def wrap(self, next_handler: Handler, route: Route | None) -> Handler:
        async def handler(request: Request) -> Response:
            response = await next_handler(request)
            self.seen.append((response.status, type(response.error).__name__))
            response.headers.set("x-observed", "yes")
            return response

        return handler

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        async def refuse(request: Request) -> Response:
            raise Unauthorized("no")

        async def crash(request: Request) -> Response:
            raise RuntimeError("boom")

        return [Route("/refuse", refuse), Route("/crash", crash), Route("/ok", lambda request: TextResponse("ok"))]


async def test_middleware_see_errors_as_responses_and_decorate_them() -> None:
    observer = Observer()
    async with running(app_from({"observer": {}, "router": {}}, extra_plugins={"observer": observer})) as client:
        answers = [await client.get(path) for path in ("/ok", "/refuse", "/crash", "/missing")]
    assert [(r.status_code, r.headers.get("x-observed")) for r in answers] == [(200, "yes"), (401, "yes"), (500, "yes"), (404, "yes")]
    assert observer.seen == [(200, "NoneType"), (401, "Unauthorized"), (500, "RuntimeError"), (404, "NotFound")]
    assert answers[2].json()["error_id"] and "boom" not in answers[2].text


class Guarded:
    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        return [Route("/notes", lambda request: "ok", methods=("POST",), name="notes.create", auth=AuthRequirement(scopes=("notes:write",)))]


def test_a_protection_nothing_enforces_stops_startup_unless_allowed_loudly() -> None:
    with pytest.raises(StartupError, match=r"route 'notes\.create' of plugin 'g' declares auth checks no enabled plugin enforces: enable authz"):
        app_from({"g": {}, "router": {}}, extra_plugins={"g": Guarded()})
    app_from({"g": {}, "router": {}, "authz": {}}, extra_plugins={"g": Guarded()})
    app_from({"g": {}, "router": {}}, extra_plugins={"g": Guarded()}, kernel={"allow_unenforced": True})


# -- the command line ------------------------------------------------------------------


def test_listing_commands_need_no_secret(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("WASMKERNEL_JWT_SECRET", raising=False)
    registry = str(project_root() / "plugin_registry.toml")
    for command in ("plugins", "routes"):
        assert main([command, "--registry", registry]) == 0
        captured = capsys.readouterr()
        assert "unset secret" in captured.err and "WASMKERNEL_JWT_SECRET" in captured.err


def test_run_refuses_to_start_without_the_secret(tmp_path: Path) -> None:
    registry = tmp_path / "r.toml"
    registry.write_text('[plugins.auth-jwt.config]\nalgorithms = ["HS256"]\nsecret = { env = "WASMKERNEL_TEST_UNSET_SECRET" }\n')
    result = subprocess.run([str(BIN / "wasmkernel"), "run", "--registry", str(registry)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "environment variable WASMKERNEL_TEST_UNSET_SECRET is not set" in result.stderr


def test_run_exits_non_zero_when_startup_fails(tmp_path: Path) -> None:
    """matmul refuses to start (its module is not loaded): the worker's
    lifespan fails, and `wasmkernel run` exits 1 with the reason."""
    registry = tmp_path / "r.toml"
    registry.write_text(
        "[kernel]\nallow_unenforced = true\n[plugins.router]\n[plugins.authz]\n"
        "[plugins.wasmer-loader.config]\nwatch = false\nworkers = 1\n"
        f'[[plugins.wasm.config.modules]]\nname = "matmul"\npath = "{project_root() / "wasm_modules" / "dist" / "matmul.wasm"}"\n'
        '[plugins.matmul.config]\nmodule = "nope"\n'
    )
    result = subprocess.run(
        [str(BIN / "wasmkernel"), "run", "--registry", str(registry), "--bind", "127.0.0.1:0"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1
    assert (
        result.stderr.splitlines()[-1]
        == "wasmkernel: startup failed: plugin 'matmul' failed to start: StartupError: module 'nope' is not loaded (loaded: matmul)"
    )
    assert "Running on" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_help_says_where_plugin_commands_come_from(tmp_path: Path) -> None:
    result = subprocess.run([str(BIN / "wasmkernel"), "token"], capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path)
    assert result.returncode == 2
    assert "no command 'token'; plugins' commands are missing: plugin_registry.toml: registry file not found" in result.stderr
