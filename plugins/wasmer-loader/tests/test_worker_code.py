"""What the Python 3.10 side gets and says: the worker code imports in a fresh
3.10 process where nothing else of WasmKernel exists; the wire carries
builtins only, and the server trusts nothing a worker sends; the distribution
does not depend on wasmer; no 3.10 is one line saying what to install."""

from __future__ import annotations

import importlib.metadata
import os
import pickle
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from wasmkernel_wasm import ArrayIn, ArrayOut
from wasmkernel_wasm.calls import ExportNames, Outcome
from wasmkernel_wasm.hostapi.grants import Grants
from wasmkernel_wasm.portable import PORTABLE_FILES, portable_files
from wasmkernel_wasm.testing import ROOT
from wasmkernel_wasmer_loader import environment
from wasmkernel_wasmer_loader.environment import install_worker_code, worker_environment
from wasmkernel_wasmer_loader.worker import wire
from wasmkernel_wasmer_loader.worker.wire import ModuleRef, WireError, decode_outcome, encode_outcome, from_wire, loads, to_wire

from wasmkernel import StartupError

WORKER_FILES = ["__init__.py", "jobs.py", "serve.py", "wire.py"]

PROBE = """
import importlib, sys
sys.path.insert(0, sys.argv[1])
for name in sys.argv[2:]:
    importlib.import_module(name)
try:
    import wasmkernel
except ModuleNotFoundError:
    kernel = "absent"
else:
    kernel = "present"
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"wasmkernel", "trio", "structlog", "pluggy", "hypercorn", "cattrs", "httpx", "anyio"})
print(sys.version_info[:2], kernel, heavy)
"""


def test_worker_code_imports_on_python_310_without_the_kernel(tmp_path: Path) -> None:
    env = worker_environment()
    code = install_worker_code(tmp_path)
    modules = [name.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for name in portable_files()]
    modules.append("wasmkernel_wasmer_loader.worker.serve")  # and through it jobs (wasmer) and wire
    done = subprocess.run([env.python, "-I", "-c", PROBE, str(code), *modules], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(maxsplit=2) == ["(3,", "10)", "absent []\n"]


def test_worker_code_is_the_portable_modules_and_the_worker_package(tmp_path: Path) -> None:
    code = install_worker_code(tmp_path)
    files = sorted(str(path.relative_to(code)) for path in code.rglob("*.py"))
    expected = [f"wasmkernel_wasm/{name}" for name in PORTABLE_FILES] + ["wasmkernel_wasmer_loader/__init__.py"]
    expected += [f"wasmkernel_wasmer_loader/worker/{name}" for name in WORKER_FILES]
    assert files == sorted(expected)
    assert install_worker_code(tmp_path) == code  # named by content: installed once


def test_ruff_checks_the_worker_code_as_python_310() -> None:
    targets = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["per-file-target-version"]
    expected = {f"plugins/wasm/{name}" for name in portable_files()}
    expected |= {"plugins/wasmer-loader/wasmkernel_wasmer_loader/__init__.py", "plugins/wasmer-loader/wasmkernel_wasmer_loader/worker/*.py"}
    assert {path for path, version in targets.items() if version == "py310"} == expected
    assert sorted(path.name for path in environment.WORKER.glob("*.py")) == WORKER_FILES


def test_the_distribution_does_not_depend_on_wasmer() -> None:
    requires = importlib.metadata.requires("wasmkernel-wasmer-loader") or []
    assert not [line for line in requires if line.lower().startswith(("wasmer", "trio-parallel", "trio_parallel"))]
    assert "wasmer" not in sys.modules


def ref() -> ModuleRef:
    grants = Grants("m", "plugins.wasm.config.modules[0]", log=True, vars=(("A", "1"),), kv=True)
    exports = ExportNames(alloc="malloc")
    return ModuleRef("m", 3, "/cache/x.wasmer", True, 1 << 20, env=(("K", "V"),), dirs=(("/h", "/g", False),), exports=exports, grants=grants)


def test_refs_and_arrays_cross_as_builtins_and_come_back_equal() -> None:
    args = (ref(), "matmul", (ArrayIn(b"\x00" * 16, "f64"), ArrayOut(2, "f64"), 7, 1.5))
    encoded = to_wire(args)
    body = pickle.dumps(encoded, protocol=wire.PROTOCOL)
    assert b"wasmkernel" not in body and b"attr" not in body  # no class crosses
    assert from_wire(loads(body)) == args


def test_a_frame_naming_any_global_is_refused() -> None:
    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, ("true",))

    with pytest.raises(WireError, match=r"posix\.system"):
        loads(pickle.dumps(("ok", Evil())))
    with pytest.raises(WireError, match="undecodable"):
        loads(b"\x80\x05garbage")
    with pytest.raises(WireError, match="exceeds the limit"):
        wire.frame_size(wire.HEADER.pack(1 << 40), 1 << 20)


@pytest.mark.parametrize(
    "change",
    [
        {"error": "explode"},
        {"value": [1, 2]},
        {"outputs": (b"x", "not bytes")},
        {"logs": (("critical", "e", "m", ()),)},  # not a level the host API emits
        {"logs": (("info", "e", "m", (("k",),)),)},
        {"exit_status": "0"},
        {"unknown_field": 1},
    ],
)
def test_a_malformed_outcome_is_refused(change: dict[str, Any]) -> None:
    good = encode_outcome(Outcome(value=b"body", logs=(("info", "wasm.guest_log", "hi", (("k", "v"),)),)))
    assert decode_outcome(good) == Outcome(value=b"body", logs=(("info", "wasm.guest_log", "hi", (("k", "v"),)),))
    with pytest.raises(WireError):
        decode_outcome(good | change)


def test_no_python_310_is_one_line_naming_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(environment.PYTHON_VAR, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.setattr(environment.shutil, "which", lambda name: None)
    with pytest.raises(StartupError) as info:
        environment.find_interpreter()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("the Wasmer loader's workers need CPython 3.10")
    assert "pyenv install 3.10" in message and "the wasmtime loader needs none" in message


def test_check_command_with_a_bogus_interpreter_says_what_to_install(tmp_path: Path) -> None:
    registry = tmp_path / "r.toml"
    registry.write_text(
        f'[plugins.wasmer-loader.config]\nwatch = false\ncache_dir = "{tmp_path / "cache"}"\n'
        f'[[plugins.wasm.config.modules]]\nname = "hello"\npath = "{ROOT / "wasm_modules" / "dist" / "hello.wasm"}"\nkind = "http"\n'
    )
    env = {**os.environ, environment.PYTHON_VAR: "/nonexistent/python3.10"}
    command = [str(Path(sys.executable).parent / "wasmkernel"), "check", "--registry", str(registry)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert done.returncode == 1
    failed = [line for line in done.stdout.splitlines() + done.stderr.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and "'/nonexistent/python3.10' is not a working CPython 3.10" in failed[0] and "wasmtime loader needs none" in failed[0]


def test_the_searched_interpreter_is_remembered_and_searched_again_when_gone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    found = worker_environment()  # the machine's: its environment exists
    monkeypatch.delenv(environment.PYTHON_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv(environment.ENVIRONMENT_VAR, str(found.directory))
    assert worker_environment() == found
    record = tmp_path / "wasmkernel" / "wasmer-python.json"
    assert record.exists()

    def no_process(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(environment.subprocess, "run", no_process)
    assert worker_environment() == found  # remembered: no probe, no `pyenv root`

    record.write_text('{"path": "/nonexistent/python3.10", "version": "3.10.13", "where": "pyenv"}')
    with pytest.raises(AssertionError, match="a process was started"):
        worker_environment()  # the remembered interpreter is gone: searched again
    record.write_text("not json")
    with pytest.raises(AssertionError, match="a process was started"):
        worker_environment()
    monkeypatch.setenv(environment.PYTHON_VAR, found.interpreter.path)
    with pytest.raises(AssertionError, match="a process was started"):
        worker_environment()  # a named interpreter is always probed
