"""Third-party WASI program needs, on every loader: the request body in a
named scratch file, the response body from a named scratch file, and
`/dev/null` and `/dev/urandom`; attacked with symlinks, directories, missing
files and bad registry entries."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import wasmtime
from wasmkernel_wasm.scratch import ScratchFileError, read_output
from wasmkernel_wasm.testing import loader_of

from wasmkernel import RegistryError, StartupError
from wasmkernel.testing import running

RIGHTS = "(i64.const 0x1fffffff) (i64.const 0x1fffffff)"


#: The first granted directory's fd: wasmer 1.1 preopens a root "/" as fd 3
#: (wasi-libc finds directories by name, as real programs do; these tests do not).
FIRST_DIR = {"wasmer-loader": 4, "wasmtime-loader": 3}


@pytest.fixture
def first_dir(loader_name: str) -> int:
    return FIRST_DIR[loader_name]


def program(tmp_path: Path, name: str, body: str, data: str = "", first_dir: int = 3) -> str:
    """A WASI command: `body` runs in `_start` (memory: 0 iovec, 16 count,
    32 opened fd, 64.. strings, 1024.. buffer; `$dir` the first granted
    directory's fd); a nonzero errno exits 10+."""
    body = body.replace("(i32.const 3)", f"(i32.const {first_dir})")
    text = f"""
    (module
      (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_symlink" (func $symlink (param i32 i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_create_directory" (func $mkdir (param i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 2)
      {data}
      (func $check (param $errno i32) (param $code i32)
        (if (local.get $errno) (then (call $exit (local.get $code)))))
      (func (export "_start") {body}))
    """
    path = tmp_path / f"{name}.wasm"
    path.write_bytes(bytes(wasmtime.wat2wasm(text)))
    return str(path)


def copy_program(tmp_path: Path, first_dir: int) -> str:
    """Reads scratch `in.bin` (fd 3), writes "got:" + it to scratch `out.bin`."""
    return program(
        tmp_path,
        "copy",
        f"""
        (call $check (call $open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 6) (i32.const 0) {RIGHTS} (i32.const 0) (i32.const 32)) (i32.const 11))
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const 60000))
        (call $check (call $read (i32.load (i32.const 32)) (i32.const 0) (i32.const 1) (i32.const 16)) (i32.const 12))
        (i32.store (i32.const 4) (i32.add (i32.load (i32.const 16)) (i32.const 4)))
        (i32.store (i32.const 0) (i32.const 1020))
        (call $check (call $open (i32.const 3) (i32.const 0) (i32.const 80) (i32.const 7) (i32.const 9) {RIGHTS} (i32.const 0) (i32.const 32)) (i32.const 13))
        (call $check (call $write (i32.load (i32.const 32)) (i32.const 0) (i32.const 1) (i32.const 16)) (i32.const 14))
        """,
        '(data (i32.const 64) "in.bin") (data (i32.const 80) "out.bin") (data (i32.const 1020) "got:")',
        first_dir,
    )


def with_module(config: dict[str, Any], path: str, **module: Any) -> dict[str, Any]:
    spec = {"name": "prog", "path": path, "kind": "wasi", "output": "raw", **module}
    return {
        **config,
        "modules": [*config["modules"], spec],
        "routes": [*config["routes"], {"path": "/prog", "module": "prog", "methods": ["POST"]}],
    }


FILES = {"scratch": "/work", "body_file": "/work/in.bin", "output_file": "/work/out.bin", "content_type": "audio/wav"}


async def test_body_in_and_response_from_named_scratch_files(make_app: Any, config: dict[str, Any], tmp_path: Path, first_dir: int) -> None:
    async with running(make_app(with_module(config, copy_program(tmp_path, first_dir), **FILES))) as client:
        for body in (b"RIFF\x00\x01wave", b""):
            response = await client.post("/prog", content=body)
            assert (response.status_code, response.content) == (200, b"got:" + body), response.text
            assert response.headers["content-type"] == "audio/wav"


async def test_without_body_file_the_program_finds_no_input(make_app: Any, config: dict[str, Any], tmp_path: Path, first_dir: int) -> None:
    entry = {**FILES, "body_file": None}
    del entry["body_file"]
    async with running(make_app(with_module(config, copy_program(tmp_path, first_dir), **entry))) as client:
        response = await client.post("/prog", content=b"x")
    assert response.status_code == 500 and "exited with status 11" in response.text


@pytest.mark.parametrize(
    ("attack", "data"),
    [
        # out.bin -> a host file outside the sandbox, by a relative and an absolute target
        ("(drop (call $symlink (i32.const 96) (i32.const 22) (i32.const 3) (i32.const 80) (i32.const 7)))", '(data (i32.const 96) "../../../../etc/passwd")'),
        ("(drop (call $symlink (i32.const 96) (i32.const 11) (i32.const 3) (i32.const 80) (i32.const 7)))", '(data (i32.const 96) "/etc/passwd")'),
        # out.bin is a directory
        ("(drop (call $mkdir (i32.const 3) (i32.const 80) (i32.const 7)))", ""),
        # nothing written at all
        ("", ""),
    ],
)
async def test_hostile_or_missing_output_file_is_502(make_app: Any, config: dict[str, Any], tmp_path: Path, first_dir: int, attack: str, data: str) -> None:
    path = program(tmp_path, "attack", attack, f'(data (i32.const 80) "out.bin") {data}', first_dir)
    async with running(make_app(with_module(config, path, **FILES))) as client:
        response = await client.post("/prog", content=b"")
    assert response.status_code == 502, response.text
    assert "root:" not in response.text and "output file out.bin" in response.json()["detail"]


def test_read_output_is_bounded_and_follows_no_symlink(tmp_path: Path) -> None:
    (tmp_path / "tmp" / "sub").mkdir(parents=True)
    (tmp_path / "tmp" / "big").write_bytes(b"x" * 101)
    (tmp_path / "secret").write_bytes(b"host")
    os.symlink(tmp_path / "secret", tmp_path / "tmp" / "sub" / "link")
    os.symlink(tmp_path, tmp_path / "tmp" / "up")
    assert read_output(str(tmp_path), PurePosixPath("big"), 101) == b"x" * 101
    for name, problem in (("big", "over 100 bytes"), ("sub/link", "cannot be read"), ("up/secret", "cannot be read"), ("sub", "not a regular file")):
        with pytest.raises(ScratchFileError, match=problem):
            read_output(str(tmp_path), PurePosixPath(name), 100)


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"body_file": "/work/in.bin"}, "body_file"),  # no scratch
        ({**FILES, "body_file": "/elsewhere/in.bin"}, "body_file"),
        ({**FILES, "output_file": "/work/../etc/passwd"}, "output_file"),
        ({**FILES, "output_file": "/work"}, "output_file"),
        ({**FILES, "output_file": "/work/in.bin"}, "output_file"),
        ({**FILES, "output": "cgi"}, "output"),
        ({"devices": ["urandom", "sda"]}, "devices"),
        ({"devices": ["null"], "dirs": [{"host": ".", "guest": "/dev"}]}, "devices"),
    ],
)
def test_bad_entries_are_refused_naming_the_key(make_app: Any, config: dict[str, Any], tmp_path: Path, first_dir: int, entry: dict[str, Any], key: str) -> None:
    with pytest.raises(RegistryError, match=rf"modules\[\d+\]\.{key}"):
        make_app(with_module(config, copy_program(tmp_path, first_dir), **entry))


def test_scratch_file_options_only_for_wasi_modules(make_app: Any, config: dict[str, Any]) -> None:
    config["modules"][1]["devices"] = ["null"]
    with pytest.raises(RegistryError, match="devices: only for kind = 'wasi'"):
        make_app(config)


def device_program(tmp_path: Path, first_dir: int) -> str:
    """Opens /dev (fd 3) `urandom`, copies 16 bytes to stdout; writes to `null`."""
    return program(
        tmp_path,
        "devices",
        f"""
        (call $check (call $open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 7) (i32.const 0) {RIGHTS} (i32.const 0) (i32.const 32)) (i32.const 11))
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const 16))
        (call $check (call $read (i32.load (i32.const 32)) (i32.const 0) (i32.const 1) (i32.const 16)) (i32.const 12))
        (call $check (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)) (i32.const 13))
        (call $check (call $open (i32.const 3) (i32.const 0) (i32.const 80) (i32.const 4) (i32.const 0) {RIGHTS} (i32.const 0) (i32.const 32)) (i32.const 14))
        (call $check (call $write (i32.load (i32.const 32)) (i32.const 0) (i32.const 1) (i32.const 16)) (i32.const 15))
        """,
        '(data (i32.const 64) "urandom") (data (i32.const 80) "null")',
        first_dir,
    )


async def test_dev_urandom_and_null_when_granted(make_app: Any, config: dict[str, Any], tmp_path: Path, first_dir: int) -> None:
    async with running(make_app(with_module(config, device_program(tmp_path, first_dir), devices=["urandom", "null"]))) as client:
        first, second = (await client.post("/prog"), await client.post("/prog"))
    assert (first.status_code, second.status_code) == (200, 200), first.text
    assert len(first.content) == len(second.content) == 16 and first.content != second.content


async def test_no_dev_unless_granted(make_app: Any, config: dict[str, Any], tmp_path: Path, first_dir: int) -> None:
    async with running(make_app(with_module(config, device_program(tmp_path, first_dir)))) as client:
        response = await client.post("/prog")
    assert response.status_code == 500 and "exited with status 11" in response.text


REACTOR = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $ready (mut i32) (i32.const 0))
  (data (i32.const 64) "cold")
  (data (i32.const 68) "warm")
  (func (export "_initialize") (global.set $ready (i32.const 1)))
  (func (export "")
    (i32.store (i32.const 0) (i32.add (i32.const 64) (i32.mul (global.get $ready) (i32.const 4))))
    (i32.store (i32.const 4) (i32.const 4))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))
"""


async def test_reactor_entry_other_than_start_runs_after_initialize(make_app: Any, config: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "reactor.wasm"
    path.write_bytes(bytes(wasmtime.wat2wasm(REACTOR)))
    async with running(make_app(with_module(config, str(path), entry=""))) as client:
        responses = [await client.post("/prog") for _ in range(2)]
    assert [(r.status_code, r.content) for r in responses] == [(200, b"warm")] * 2


def test_entry_must_be_exported(make_app: Any, config: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "reactor.wasm"
    path.write_bytes(bytes(wasmtime.wat2wasm(REACTOR)))
    app = make_app(with_module(config, str(path)))  # entry "_start", which it does not export
    with pytest.raises(StartupError, match="does not export _start"):
        loader_of(app).prepare("prog")


def test_entry_only_for_wasi_modules(make_app: Any, config: dict[str, Any]) -> None:
    config["modules"][1]["entry"] = "main"
    with pytest.raises(RegistryError, match="entry: only for kind = 'wasi'"):
        make_app(config)
