"""The default plugin_registry.toml: it assembles; every plugin in it can be
disabled, or startup says in one line what the others need; its plugin
tables in any order build the same application."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest

from wasmkernel import Application, StartupError
from wasmkernel.registry import load_registry, parse_registry
from wasmkernel.testing import project_root, running

DEFAULT = project_root() / "plugin_registry.toml"
NAMES = [entry.name for entry in load_registry(DEFAULT).plugins if entry.enabled]
#: What disabling a plugin breaks, and the startup error that says so.
NEEDED = {
    "authz": "declares auth checks no enabled plugin enforces: enable authz",
    "wasmer-loader": r"\[plugins.wasm\] config.modules: \d+ module\(s\) declared but no module loader is enabled",
    "channels": "requires plugin 'channels', which .* disables: enable it or disable",
    "wasm": "requires plugin 'wasm', which .* disables: enable it or disable",
    # The filters guard routes the HTTP triggers serve: without them a selector selects nothing.
    "wasm-http": r"plugins.wasm-filters.config.filters\[0\] \(filter module 'c_filter'\) selects no route",
    # A limit for a route nobody serves is a typo or a disabled plugin: said at startup.
    "matmul": r"\[plugins.limits\] config.routes: no route named 'matmul'",
}


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASMKERNEL_JWT_SECRET", "test-secret-" + "x" * 40)


def default_tables() -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads(DEFAULT.read_text(encoding="utf-8"))
    return data


def assemble(data: dict[str, Any]) -> Application:
    return Application.assemble(parse_registry(data, Path(DEFAULT)))


def without(name: str) -> Application:
    data = default_tables()
    data["plugins"][name]["enabled"] = False
    return assemble(data)


def shuffled(seed: int) -> dict[str, Any]:
    data = default_tables()
    names = list(data["plugins"])
    random.Random(seed).shuffle(names)
    data["plugins"] = {name: data["plugins"][name] for name in names}
    return data


def shape(app: Application) -> dict[str, Any]:
    return {
        "plugins": [plugin.name for plugin in app.plugins],
        "startup": [plugin.name for plugin in app.startup_order()],
        "chain": [(link.name, link.owner) for link in app.middleware],
        "routes": [(route.methods, route.path, route.owner) for route in app.router.routes],
        "authenticators": [type(authenticator).__name__ for _, authenticator in app.hooks.gather("wasmkernel_authenticators")],
    }


def test_the_default_registry_assembles() -> None:
    app = Application.assemble(load_registry(DEFAULT))
    assert {route.path for route in app.routes} >= {"/health", "/matmul", "/api/matmul", "/hello/{name}", "/metrics", "/openapi.json"}
    assert "wasm" in {plugin.name for plugin in app.plugins}  # brought in by wasmer-loader and matmul


@pytest.mark.parametrize("name", [name for name in NAMES if name not in NEEDED])
def test_any_plugin_can_be_disabled(name: str) -> None:
    app = without(name)
    assert name not in {plugin.name for plugin in app.plugins}
    assert all(route.owner != name for route in app.routes)


@pytest.mark.parametrize("name", sorted(NEEDED))
def test_disabling_what_others_need_is_one_clear_line(name: str) -> None:
    with pytest.raises(StartupError, match=NEEDED[name]):
        without(name)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_plugin_tables_in_any_order_build_the_same_application(seed: int) -> None:
    original = shape(assemble(default_tables()))
    reordered = shuffled(seed)
    assert list(reordered["plugins"]) != list(default_tables()["plugins"])
    assert shape(assemble(reordered)) == original


async def test_a_shuffled_registry_serves_the_same_answers() -> None:
    answers = []
    for data in (default_tables(), shuffled(7)):
        async with running(assemble(data)) as client:
            responses = [await client.get(path) for path in ("/health", "/hello", "/nope", "/api/matmul")]
            answers.append([(r.status_code, r.headers.get("content-type"), sorted(k for k in r.headers if k != "x-request-id")) for r in responses])
    assert answers[0] == answers[1]
    assert [status for status, _, _ in answers[0]] == [200, 200, 404, 405]


async def test_the_openapi_document_is_valid_with_content_for_every_2xx() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    async with running(assemble(default_tables())) as client:
        document = (await client.get("/openapi.json")).json()
    validator.validate(document)
    generic: dict[str, Any] = {"*/*": {"schema": {}}}  # what a module's http or wasi route may answer: anything
    modules = {route.pattern.template for route in assemble(default_tables()).routes if route.owner == "wasm-http"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status.startswith("2"):
                    assert response.get("content"), (method, path, status)
                    assert path in modules or response["content"] != generic, (method, path, status)
                elif (path, status) != ("/readyz", "503"):  # readiness says what is missing in its own body
                    assert list(response["content"]) == ["application/problem+json"], (method, path, status)
    schemas = document["components"]["schemas"]
    assert {"Post", "Comment", "Posts", "NewText", "BenchmarkResult", "Operands", "Product", "Health"} <= set(schemas)
    assert schemas["Error"]["required"] == ["title", "status", "detail"]
    assert schemas["Problem"]["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/ValidationError"}


async def test_anonymous_clients_cannot_fill_the_public_examples_stores() -> None:
    """Issue 22 class 12/14: reading a count is public, counting needs scope
    counter:write; a link's stats need the creators' scope links:write."""
    async with running(assemble(default_tables())) as client:
        assert (await client.get("/as/count/anyone")).status_code == 200
        assert (await client.post("/as/count/anyone")).status_code == 401
        assert (await client.get("/links/abcdefgh/stats")).status_code == 401


#: Requests covering every kind of module in the default registry: http (Rust,
#: C, AssemblyScript), WASI commands, filters (a refusal, a header), key-value, vars, compute.
SWITCH_REQUESTS = [
    ("GET", "/hello/ada", {}),
    ("GET", "/c/hello/ada", {}),
    ("GET", "/as/hello/ada", {}),
    ("GET", "/c/greet/ada", {}),
    ("POST", "/c/greet/ada", {}),
    ("GET", "/as/hello/ada", {"user-agent": "badbot"}),
    ("GET", "/as/count/ada", {}),
    ("GET", "/c/wagi/word", {}),
    ("GET", "/as/wagi/ada", {}),
    ("GET", "/wagi/x?y=1", {}),
    ("GET", "/matmul?n=4", {}),
]


#: What differs between two runs whatever the runtime: ids, timings, the rate limiter's refill.
UNSTABLE_HEADERS = {"x-request-id", "date", "content-length", "ratelimit-remaining", "ratelimit-reset"}
UNSTABLE_FIELDS = {"error_id", "compute_ms", "module_ms"}


def comparable(response: httpx.Response) -> tuple[int, Any, list[tuple[str, str]]]:
    """Status, body and headers, without what differs from run to run."""
    body: Any = response.content
    if response.headers.get("content-type", "").endswith("json"):
        body = {key: value for key, value in response.json().items() if key not in UNSTABLE_FIELDS}
    return response.status_code, body, sorted((k, v) for k, v in response.headers.items() if k not in UNSTABLE_HEADERS)


def with_loader(loader: str) -> dict[str, Any]:
    """The default registry with its one loader line naming `loader`."""
    lines = DEFAULT.read_text(encoding="utf-8").splitlines()
    switched = [f"[plugins.{loader}.config]" if line == "[plugins.wasmer-loader.config]" else line for line in lines]
    assert sum(old != new for old, new in zip(lines, switched, strict=True)) == (loader != "wasmer-loader")
    data: dict[str, Any] = tomllib.loads("\n".join(switched))
    return data


async def test_switching_loader_is_one_line_and_answers_alike() -> None:
    """Issue 23: the routes, filters and modules are the host's; changing the
    loader's one header line serves the same answers on the other runtime."""
    from wasmkernel_wasm import MODULE_LOADER
    from wasmkernel_wasm.testing import use_loader

    seen = {}
    for loader in ("wasmer-loader", "wasmtime-loader"):
        use_loader(loader)
        app = assemble(with_loader(loader))
        assert loader in {plugin.name for plugin in app.plugins} and {"wasmer-loader", "wasmtime-loader"} - {loader} - {p.name for p in app.plugins}
        async with running(app) as client:
            module_loader = app.services.get(MODULE_LOADER, needed_by="tests")
            assert module_loader.runtime == loader.removesuffix("-loader")
            answers = []
            for method, path, headers in SWITCH_REQUESTS:
                response = await client.request(method, path, headers=headers)
                answers.append((method, path, *comparable(response)))
            seen[loader] = {
                "routes": shape(app)["routes"],
                "chain": shape(app)["chain"],
                "modules": sorted((info.name, info.kind) for info in module_loader.modules()),
                "answers": answers,
            }
    assert seen["wasmer-loader"] == seen["wasmtime-loader"]
    statuses = [answer[2] for answer in seen["wasmer-loader"]["answers"]]
    assert 200 in statuses and len(seen["wasmer-loader"]["modules"]) == 13


@pytest.mark.parametrize(
    ("key", "place"),
    [
        ("modules", r"\[\[plugins.wasm.config.modules\]\]"),
        ("routes", r"\[\[plugins.wasm-http.config.routes\]\]"),
        ("filters", r"\[\[plugins.wasm-filters.config.filters\]\]"),
        ("secret_headers", r"plugins.wasm.config.secret_headers"),
    ],
)
def test_a_module_table_key_in_the_loaders_section_says_where_it_moved(key: str, place: str) -> None:
    data = default_tables()
    data["plugins"]["wasmer-loader"]["config"][key] = []
    with pytest.raises(StartupError, match=rf"\[plugins.wasmer-loader\] config.{key}: moved to {place}"):
        assemble(data)


@pytest.mark.parametrize(("key", "plugin"), [("routes", "wasm-http"), ("filters", "wasm-filters")])
def test_triggers_in_the_hosts_section_say_where_they_moved(key: str, plugin: str) -> None:
    data = default_tables()
    data["plugins"]["wasm"]["config"][key] = data["plugins"][plugin]["config"].pop(key)
    with pytest.raises(StartupError, match=rf"\[plugins.wasm\] config.{key}: moved to \[\[plugins.{plugin}.config.{key}\]\]"):
        assemble(data)


def test_assembling_it_imports_no_client_for_a_service_it_does_not_use() -> None:
    """No Redis url: no coredis (nor its beartype); no module granted outbound
    HTTP: no httpx — start-up time and memory a default server does not pay."""
    probe = (
        "import sys; from wasmkernel import Application; from wasmkernel.registry import load_registry; "
        f"Application.assemble(load_registry({str(DEFAULT)!r})); "
        "print(sorted({'coredis', 'beartype', 'httpx'} & {name.split('.')[0] for name in sys.modules}))"
    )
    env = {**os.environ, "WASMKERNEL_REDIS_URL": ""}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
