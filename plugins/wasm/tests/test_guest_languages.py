"""The C and AssemblyScript example modules (wasm_modules/c_hello, c_greet,
c_filter, c_wagi, as_hello, as_counter, built by wasm_modules/build.sh)
served as the default registry declares them (grants and filters included),
on every loader."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from wasmkernel_wasm.testing import module_tables

from wasmkernel.testing import project_root, running

EXAMPLES = ("c_hello", "c_greet", "c_filter", "c_wagi", "as_hello", "as_counter", "as-filter", "as-wagi")


@pytest.fixture
def examples(config: dict[str, Any], dist: Path) -> dict[str, Any]:
    """`config` plus the example modules and routes of plugin_registry.toml."""
    if not all((dist / f"{name}.wasm").is_file() for name in EXAMPLES):
        pytest.skip("C/AssemblyScript examples not built (make installs clang-14, wasi-libc and assemblyscript)")
    registry = module_tables(tomllib.loads((project_root() / "plugin_registry.toml").read_text())["plugins"])
    modules = [dict(m, path=str(project_root() / m["path"])) for m in registry["modules"] if Path(m["path"]).stem in EXAMPLES]
    names = {m["name"] for m in modules}
    # The modules as the registry serves them; who may call them is authz's part (tests/test_default_registry.py).
    routes = [{key: value for key, value in r.items() if key != "scopes"} for r in registry["routes"] if r["module"] in names]
    filters = [f for f in registry["filters"] if f["module"] in names]
    return {**config, "modules": [*config["modules"], *modules], "routes": [*config["routes"], *routes], "filters": filters}


async def test_c_http_handler(make_app: Any, examples: dict[str, Any]) -> None:
    async with running(make_app(examples)) as client:
        text = await client.get("/c/hello/ada")
        json = await client.get("/c/hello/ada", params={"format": "json"})
    assert (text.status_code, text.text, text.headers["x-guest-language"]) == (200, "Hello, ada!\n", "c")
    assert json.json() == {"message": "Hello, ada!"}


async def test_c_wasi_command_wagi_style(make_app: Any, examples: dict[str, Any]) -> None:
    async with running(make_app(examples)) as client:
        response = await client.post("/c/wagi/shout", content=b"quiet words")
    assert response.status_code == 200
    assert response.text.splitlines() == ["route=/c/wagi/{word}", "arg1=--word", "arg2=shout", "body=QUIET WORDS"]


async def test_assemblyscript_http_handler(make_app: Any, examples: dict[str, Any]) -> None:
    async with running(make_app(examples)) as client:
        response = await client.get("/as/hello/grace")
    assert (response.status_code, response.text, response.headers["x-guest-language"]) == (200, "Hello, grace!\n", "assemblyscript")


async def test_c_host_api_vars_and_log(make_app: Any, examples: dict[str, Any]) -> None:
    async with running(make_app(examples)) as client:
        with capture_logs() as logs:
            response = await client.get("/c/greet/ada")
    assert (response.status_code, response.text) == (200, "Welcome, ada!\n"), (response.text, logs)  # vars = { greeting = "Welcome" }
    (line,) = [entry for entry in logs if entry["event"] == "wasm.guest_log"]
    assert (line["module"], line["message"], line["guest"]) == ("c_greet", "greeted", {"name": "ada", "greeting": "configured"})


async def test_c_host_api_refused_without_grant(make_app: Any, examples: dict[str, Any]) -> None:
    for module in examples["modules"]:
        if module["name"] == "c_greet":
            module.pop("vars")
    async with running(make_app(examples)) as client:
        with capture_logs() as logs:
            response = await client.get("/c/greet/ada")
    assert response.status_code == 500
    assert any(entry["event"] == "wasm.host_call_denied" and "vars = {" in entry["reason"] for entry in logs)


async def test_assemblyscript_host_api_kv_and_log(make_app: Any, examples: dict[str, Any]) -> None:
    async with running(make_app(examples)) as client:
        with capture_logs() as logs:
            counts = [(await client.post("/as/count/grace")).text for _ in range(3)]
        assert counts == ["1\n", "2\n", "3\n"]  # shared by every worker: the store lives in the host
        assert (await client.get("/as/count/grace")).text == "3\n"
        assert (await client.get("/as/count/ada")).text == "0\n"
    lines = [entry for entry in logs if entry["event"] == "wasm.guest_log"]
    assert [(entry["module"], entry["message"], entry["guest"]["name"], entry["guest"]["count"]) for entry in lines] == [
        ("as_counter", "counted", "grace", str(n)) for n in (1, 2, 3)
    ]


async def test_assemblyscript_kv_quota_fails_cleanly(make_app: Any, examples: dict[str, Any]) -> None:
    for module in examples["modules"]:
        if module["name"] == "as_counter":
            module["kv"] = {"max_total_bytes": 100}  # one small entry (64 bytes of it its entry cost), not two
    async with running(make_app(examples)) as client:
        with capture_logs() as logs:
            first = await client.post("/as/count/a")
            refused = await client.post("/as/count/" + "x" * 30)
    assert first.text == "1\n"
    assert refused.status_code == 507 and "max_total_bytes = 100" in refused.text
    assert any(entry["event"] == "wasm.guest_log" and entry["message"] == "count not stored" for entry in logs)


async def test_c_filter_adds_headers_on_its_routes_only(make_app: Any, examples: dict[str, Any]) -> None:
    async with running(make_app(examples)) as client:
        guarded = await client.get("/c/greet/ada")
        other = await client.get("/c/hello/ada")
    assert (guarded.status_code, guarded.text) == (200, "Welcome, ada!\n")
    assert guarded.headers["x-content-type-options"] == "nosniff" and guarded.headers["referrer-policy"] == "no-referrer"
    assert guarded.headers["x-upstream-status"] == "200"
    assert "x-upstream-status" not in other.headers  # prefixes = ["/c/greet"]


async def test_c_filter_refuses_methods_and_edits_the_request(make_app: Any, examples: dict[str, Any]) -> None:
    examples["filters"] = [{**examples["filters"][0], "prefixes": ["/wagi"]}]  # the WAGI echo (GET, POST) behind it
    async with running(make_app(examples)) as client:
        with capture_logs() as logs:
            refused = await client.post("/wagi/x", content=b"hi")
        passed = await client.get("/wagi/x", params={"headers": "1"})
    assert refused.status_code == 405 and refused.headers["allow"] == "GET,HEAD"
    assert refused.headers["content-type"] == "application/problem+json" and refused.json()["detail"] == "allowed: GET,HEAD"
    (line,) = [entry for entry in logs if entry["event"] == "wasm.guest_log"]
    assert (line["module"], line["guest"]["method"], line["guest"]["allowed"]) == ("c_filter", "POST", "GET,HEAD")
    assert passed.status_code == 200 and "header.x-filtered-by=c_filter" in passed.text.splitlines()
    assert passed.headers["x-upstream-status"] == "200"


async def test_assemblyscript_filter_guards_the_assemblyscript_routes(make_app: Any, examples: dict[str, Any]) -> None:
    async with running(make_app(examples)) as client:
        passed = await client.get("/as/hello/ada")
        refused = await client.get("/as/hello/ada", headers={"user-agent": "a badbot/1.0"})
        other = await client.get("/c/hello/ada", headers={"user-agent": "a badbot/1.0"})
    assert (passed.status_code, passed.headers["x-filtered-by"]) == (200, "as-filter")
    assert (refused.status_code, refused.text) == (403, "refused by as-filter\n")
    assert other.status_code == 200 and "x-filtered-by" not in other.headers  # prefixes = ["/as/"]


async def test_assemblyscript_wasi_command_wagi_style(make_app: Any, examples: dict[str, Any]) -> None:
    async with running(make_app(examples)) as client:
        response = await client.post("/as/wagi/grace", content=b"12345")
    assert (response.status_code, response.text) == (200, "Hello, grace! (POST with 5 bytes)\n")
    assert response.headers["x-filtered-by"] == "as-filter"
