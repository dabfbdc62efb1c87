"""The runtime-independent pieces in wasmkernel_wasm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from wasmkernel_wasm import PAGE, WasmError, WasmRequest
from wasmkernel_wasm.cgi import cgi_env, parse_cgi_output
from wasmkernel_wasm.modules import cap_memory, inspect_wasm
from wasmkernel_wasm.wire import decode_response, encode_request

from wasmkernel.cli import main


def test_request_encoding_layout() -> None:
    data = encode_request(WasmRequest("GET", "/a", "x=1", (("n", "v"),), (("h", "w"),), b"B"))
    assert data == (b"\x03\0\0\0GET\x02\0\0\0/a\x03\0\0\0x=1\x01\0\0\0\x01\0\0\0n\x01\0\0\0v\x01\0\0\0\x01\0\0\0h\x01\0\0\0w\x01\0\0\0B")


def test_response_decoding_and_malformed_responses() -> None:
    raw = b"\xc8\0\0\0\x01\0\0\0\x01\0\0\0k\x01\0\0\0v\x02\0\0\0hi"
    response = decode_response(raw, "m")
    assert (response.status, response.headers, response.body) == (200, (("k", "v"),), b"hi")
    for bad in (raw[:-1], raw + b"x"):
        with pytest.raises(WasmError, match="module 'm' returned a malformed HTTP response"):
            decode_response(bad, "m")
    with pytest.raises(WasmError, match="module 'm' returned an unsendable response: status 7 is not a final"):
        decode_response(b"\x07\0\0\0" + raw[4:], "m")


def test_cgi_env_and_output() -> None:
    request = WasmRequest("POST", "/p", "q=1", (("id", "7"),), (("content-type", "text/plain"), ("x-a", "b"), ("x_a", "spoofed")), b"abc")
    env = cgi_env(request, "/p/{id}", "example.org", "8000")
    assert env["REQUEST_METHOD"] == "POST" and env["CONTENT_LENGTH"] == "3" and env["CONTENT_TYPE"] == "text/plain"
    assert env["HTTP_X_A"] == "b" and env["X_MATCHED_ROUTE"] == "/p/{id}" and env["X_PARAM_ID"] == "7"
    assert "spoofed" not in env.values()  # an underscore name would collide with x-a
    response = parse_cgi_output(b"Content-Type: text/html\nStatus: 404 Not Found\n\nbody\n\n", "m")
    assert (response.status, response.headers, response.body) == (404, (("content-type", "text/html"),), b"body\n\n")
    assert parse_cgi_output(b"Location: /x\r\n\r\n", "m").status == 302
    with pytest.raises(WasmError, match="no CGI header block"):
        parse_cgi_output(b"just text", "m")
    with pytest.raises(WasmError, match="invalid CGI Status"):
        parse_cgi_output(b"Status: abc\n\n", "m")


def test_memory_inspection_and_cap(dist: Path) -> None:
    data = (dist / "matmul.wasm").read_bytes()
    shape = inspect_wasm(data)
    assert shape.memory_max == 1024 * 1024 * 1024 // PAGE and "matmul_fast" in shape.exports
    capped = inspect_wasm(cap_memory(data, 100))
    assert (capped.memory_min, capped.memory_max, capped.exports) == (shape.memory_min, 100, shape.exports)
    assert cap_memory(data, 10**6) == data  # already below the cap
    with pytest.raises(ValueError, match="bad magic"):
        inspect_wasm(b"garbage!")


def test_cli_list_and_reload(loader_name: str, dist: Path, tmp_path: Path, capsys: Any) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text(
        f"""
[plugins.{loader_name}.config]
cache_dir = "cache"
[[plugins.wasm.config.modules]]
name = "hello"
path = "{dist / "hello.wasm"}"
kind = "http"
"""
    )
    assert main(["--registry", str(registry), "wasm", "list"]) == 0
    assert main(["--registry", str(registry), "wasm", "list"]) == 0
    out = capsys.readouterr().out
    assert "compiled" in out and "hit" in out and "handle" in out
    assert main(["--registry", str(registry), "wasm", "reload", "nope"]) == 1
    assert "no wasm module named 'nope'" in capsys.readouterr().err


def test_check_compiles_every_module_and_names_a_missing_file(loader_name: str, dist: Path, tmp_path: Path, capsys: Any) -> None:
    registry = tmp_path / "registry.toml"
    modules = f"""
[plugins.introspect]
[plugins.{loader_name}.config]
cache_dir = "cache"
[[plugins.wasm.config.modules]]
name = "hello"
path = "{dist / "hello.wasm"}"
kind = "http"
"""
    registry.write_text(modules)
    assert main(["--registry", str(registry), "check"]) == 0
    out = capsys.readouterr().out
    assert "wasm: module 'hello' (http, " in out and "compiled" in out and ": OK" in out
    registry.write_text(modules + f'[[plugins.wasm.config.modules]]\nname = "gone"\npath = "{tmp_path / "gone.wasm"}"\n')
    assert main(["--registry", str(registry), "check"]) == 1
    assert "wasm: FAILED:" in capsys.readouterr().err
