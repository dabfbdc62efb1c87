"""`wasmkernel new-module` as a module author runs it: scaffold (the CLI), build
(`wasmkernel wasm build PATH --out DIR`), enable (the registry lines it
printed), serve and answer over HTTP — for every language and kind, on every
loader. Each combination builds once per session; builds are what costs
(CPU seconds for one scaffolded http module, README "Writing a WebAssembly
module": C ≈ 1, Rust with LTO ≈ 6, AssemblyScript ≈ 10 — most of it the
compiler starting under node), so CI runs every C kind and the AssemblyScript
HTTP handler (the host API); the other combinations are marked slow."""

from __future__ import annotations

import contextlib
import io
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from wasmkernel_wasm.scaffold import KINDS
from wasmkernel_wasm.testing import module_tables

from wasmkernel import StartupError
from wasmkernel.cli import main
from wasmkernel.testing import project_root, running

REGISTRY = str(project_root() / "plugin_registry.toml")
FAST = {("c", kind) for kind in KINDS} | {("assemblyscript", "http")}
COMBOS = [
    pytest.param(lang, kind, id=f"{lang}-{kind}", marks=[] if (lang, kind) in FAST else [pytest.mark.slow])
    for lang in ("c", "assemblyscript", "rust")
    for kind in KINDS
]


def cli(*args: str) -> tuple[int, str]:
    """Run `wasmkernel ARGS` in this process; its exit code and stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--registry", REGISTRY, *args])
    return code, out.getvalue()


@pytest.fixture(scope="session")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], dict[str, Any]]:
    """(lang, kind) → the host config (module table) its printed registry lines declare,
    pointing at the module built into a temporary folder (built once per session)."""
    built: dict[tuple[str, str], dict[str, Any]] = {}

    def make(lang: str, kind: str) -> dict[str, Any]:
        if (lang, kind) not in built:
            base = tmp_path_factory.mktemp(f"{lang}-{kind}")
            name = f"my-{lang[:2]}-{kind}"
            code, printed = cli("new-module", name, "--lang", lang, "--kind", kind, "--directory", str(base / name))
            assert code == 0, printed
            code, _ = cli("wasm", "build", str(base / name), "--out", str(base / "dist"))
            if code != 0:
                pytest.fail(f"{lang}/{kind} scaffold did not build (a missing toolchain prints what to install above)")
            lines = module_tables(tomllib.loads(printed.split(":\n\n", 1)[1])["plugins"])
            (module,) = lines["modules"]
            assert module["path"] == f"wasm_modules/dist/{name}.wasm"  # where `wasm build` puts it without --out
            module["path"] = str(base / "dist" / f"{name}.wasm")
            built[lang, kind] = {"cache_dir": str(base / "cache"), "watch": False, "workers": 1, **lines}
        return built[lang, kind]

    return make


@pytest.mark.parametrize(("lang", "kind"), COMBOS)
async def test_scaffold_builds_and_serves(lang: str, kind: str, scaffolded: Callable[[str, str], dict[str, Any]], make_app: Any, dist: Path) -> None:
    config = scaffolded(lang, kind)
    name = config["modules"][0]["name"]
    if kind == "filter":  # its printed lines guard prefixes = ["/hello"]: the Rust hello module's route
        config = {**config, "modules": [*config["modules"], {"name": "hello", "path": str(dist / "hello.wasm"), "kind": "http"}]}
        config["routes"] = [{"path": "/hello/{name}", "module": "hello"}]
    async with running(make_app(config)) as client:
        if kind == "compute":
            response = await client.get(f"/{name}/add/40/2")
            assert (response.status_code, response.json()) == (200, {"value": 42})
            assert (await client.get(f"/{name}/add/-7/2")).json() == {"value": -5}
        elif kind == "filter":
            passed = await client.get("/hello/ada", headers={"user-agent": "curl/8"})
            refused = await client.get("/hello/ada", headers={"user-agent": "badbot/1.0"})
            assert (passed.status_code, passed.text, passed.headers["x-filtered-by"]) == (200, "Hello, ada!\n", name)
            assert (refused.status_code, refused.text) == (403, f"refused by {name}\n")
        elif kind == "http":
            response = await client.get(f"/{name}/ada")
            assert (response.status_code, response.text, response.headers["x-module"]) == (200, "Hello, ada!\n", name)
        else:
            response = await client.post(f"/{name}/ada", content=b"three")
            assert (response.status_code, response.text) == (200, "Hello, ada! (POST with 5 bytes)\n")


async def test_http_scaffold_reads_its_registry_variable(scaffolded: Callable[[str, str], dict[str, Any]], make_app: Any) -> None:
    config = scaffolded("c", "http")
    config = {**config, "modules": [{**config["modules"][0], "vars": {"greeting": "Grüß dich"}}]}
    async with running(make_app(config)) as client:
        assert (await client.get(f"/{config['modules'][0]['name']}/ada")).text == "Grüß dich, ada!\n"


def test_new_module_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("new-module", "Bad_Name", "--lang", "c", "--kind", "http", "--directory", str(tmp_path / "x"))[0] == 1
    assert "invalid module name 'Bad_Name'" in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("mine")
    assert cli("new-module", "ok", "--lang", "rust", "--kind", "wasi", "--directory", str(tmp_path / "taken"))[0] == 1
    assert "already exists and is not empty" in capsys.readouterr().err
    assert (tmp_path / "taken" / "file").read_text() == "mine"
    with pytest.raises(SystemExit):
        cli("new-module", "ok", "--lang", "cobol", "--kind", "http")


async def test_compute_route_takes_numbers_only(scaffolded: Callable[[str, str], dict[str, Any]], make_app: Any) -> None:
    config = scaffolded("c", "compute")
    name = config["modules"][0]["name"]
    config = {**config, "routes": [{"path": f"/{name}/raw/{{a}}/{{b}}", "module": name, "function": "add"}]}
    async with running(make_app(config)) as client:
        assert (await client.get(f"/{name}/raw/2/3")).json() == {"value": 5}
        bad = await client.get(f"/{name}/raw/2/x")
    assert bad.status_code == 400 and "path parameter 'b' must be a number" in bad.text


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"path": "/c", "module": "calc"}, "is a compute module: name the export the route calls"),
        ({"path": "/h/{name}", "module": "greet", "function": "add"}, "only compute routes call a function"),
    ],
)
def test_compute_route_config_is_checked(route: dict[str, str], message: str, make_app: Any, dist: Path, tmp_path: Path) -> None:
    config = {
        "cache_dir": str(tmp_path),
        "modules": [{"name": "calc", "path": str(dist / "matmul.wasm")}, {"name": "greet", "path": str(dist / "hello.wasm"), "kind": "http"}],
        "routes": [route],
    }
    with pytest.raises(StartupError, match=message):
        make_app(config)
