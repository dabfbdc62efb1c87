"""Failures that say why, on every loader: a failing WASI program's stderr
excerpt in its error body (only when granted, sanitised, bounded), compile
errors with their real cause, the other-runtime hint checked with wasmtime's
validator, and a warning before a large module compiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import wasmtime
from structlog.testing import capture_logs
from wasmkernel_wasm import modules
from wasmkernel_wasm.stderr import stderr_excerpt
from wasmkernel_wasm.testing import loader_of

from wasmkernel import RegistryError, StartupError
from wasmkernel.testing import running


def _wat_bytes(data: bytes) -> str:
    return "".join(f"\\{byte:02x}" for byte in data)


def failing_program(tmp_path: Path, stderr: bytes, status: int = 3) -> str:
    """A WASI command writing `stderr` to fd 2, then exiting with `status`."""
    text = f"""
    (module
      (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "\\10\\00\\00\\00{_wat_bytes(len(stderr).to_bytes(4, "little"))}")
      (data (i32.const 16) "{_wat_bytes(stderr)}")
      (func (export "_start")
        (drop (call $write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
        (call $exit (i32.const {status}))))
    """
    path = tmp_path / "failing.wasm"
    path.write_bytes(bytes(wasmtime.wat2wasm(text)))
    return str(path)


def with_program(config: dict[str, Any], path: str, **module: Any) -> dict[str, Any]:
    return {
        **config,
        "modules": [*config["modules"], {"name": "failing", "path": path, "kind": "wasi", "output": "raw", **module}],
        "routes": [*config["routes"], {"path": "/failing", "module": "failing", "methods": ["POST"]}],
    }


def hostile_stderr(host_dir: Path) -> bytes:
    return (
        b"\x1b[31mpanicked at src/main.rs:3\x1b[0m\r\nforged: line\n"
        + f"opening {host_dir}/secret.key failed\n".encode()
        + "\u202eevil\u202c \x00\x07".encode()
        + b"\xff\xfe done\n"
    )


async def test_stderr_stays_out_of_the_error_body_by_default(make_app: Any, config: dict[str, Any], tmp_path: Path) -> None:
    app = make_app(with_program(config, failing_program(tmp_path, b"secret detail\n")))
    async with running(app) as client:
        with capture_logs() as logs:
            response = await client.post("/failing")
    assert response.status_code == 500
    assert "exited with status 3" in response.text and "secret detail" not in response.text
    assert [entry["stderr"] for entry in logs if entry["event"] == "wasm.stderr"] == ["secret detail\n"]


async def test_granted_stderr_excerpt_is_sanitised(make_app: Any, config: dict[str, Any], tmp_path: Path) -> None:
    granted = {"host": str(tmp_path), "guest": "/data"}
    app = make_app(with_program(config, failing_program(tmp_path, hostile_stderr(tmp_path)), stderr_excerpt=4096, dirs=[granted]))
    async with running(app) as client:
        with capture_logs() as logs:
            response = await client.post("/failing")
    assert response.status_code == 500
    detail = response.json()["detail"]
    assert "stderr: [31mpanicked at src/main.rs:3 [0m forged: line opening <host path>/secret.key failed" in detail
    assert str(tmp_path) not in response.text
    assert not any(ord(char) < 0x20 or char in "\x7f\u202e\u202c" for char in detail)
    # The log keeps everything, host path included (it is the operator's).
    assert str(tmp_path) in next(entry["stderr"] for entry in logs if entry["event"] == "wasm.stderr")


async def test_stderr_excerpt_is_bounded_to_its_tail(make_app: Any, config: dict[str, Any], tmp_path: Path) -> None:
    stderr = b"x" * 3000 + b" the real reason"
    app = make_app(with_program(config, failing_program(tmp_path, stderr), stderr_excerpt=32))
    async with running(app) as client:
        detail = (await client.post("/failing")).json()["detail"]
    excerpt = detail.split("stderr: ", 1)[1]
    assert excerpt.endswith("the real reason") and len(excerpt.encode()) <= 32 + 3


@pytest.mark.parametrize("value", [-1, 4097, "yes"])
def test_stderr_excerpt_is_validated(make_app: Any, config: dict[str, Any], tmp_path: Path, value: Any) -> None:
    with pytest.raises(RegistryError, match="stderr_excerpt"):
        make_app(with_program(config, failing_program(tmp_path, b""), stderr_excerpt=value))


def test_stderr_excerpt_only_for_wasi_modules(make_app: Any, config: dict[str, Any]) -> None:
    config["modules"][1]["stderr_excerpt"] = 100
    with pytest.raises(RegistryError, match="stderr_excerpt: only for kind = 'wasi'"):
        make_app(config)


def test_excerpt_hides_overlapping_host_paths_and_never_shows_part_of_one() -> None:
    stderr = b"/srv/app/data/x and /srv/app/y"
    assert stderr_excerpt(stderr, 100, ["/srv/app", "/srv/app/data/"]) == "<host path>/x and <host path>/y"
    assert "/srv" not in stderr_excerpt(b"see /srv/app/" + b"z" * 5, 8, ["/srv/app"])
    assert stderr_excerpt(b"anything", 0, []) == ""


LEGACY_TRY = '(module (func (export "f") try nop end))'


async def test_compile_error_keeps_its_cause(make_app: Any, config: dict[str, Any], tmp_path: Path, loader_name: str) -> None:
    path = tmp_path / "legacy.wasm"
    path.write_bytes(bytes(wasmtime.wat2wasm(LEGACY_TRY)))
    config["modules"].append({"name": "legacy", "path": str(path)})
    with pytest.raises(StartupError) as raised:
        loader_of(make_app(config)).prepare("legacy")
    message = str(raised.value)
    assert "legacy" in message
    if loader_name == "wasmtime-loader":
        assert "legacy_exceptions feature required for try instruction" in message
    else:
        # Wasmer cannot run it, and neither can wasmtime: no advice to switch.
        assert "wasmtime cannot run it either" in message and "legacy_exceptions" in message
        assert "serve it with wasmtime-loader instead" not in message


async def test_large_module_warns_before_it_compiles(make_app: Any, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(modules, "SLOW_COMPILE_BYTES", 1024)
    with capture_logs() as logs:
        loader_of(make_app(config)).prepare("matmul")
    events = [entry["event"] for entry in logs]
    warning = next(entry for entry in logs if entry["event"] == "wasm.slow_compile")
    assert warning["module"] == "matmul" and warning["bytes"] > 1024 and warning["threshold_bytes"] == 1024
    assert events.index("wasm.slow_compile") < events.index("wasm.module_loaded")
