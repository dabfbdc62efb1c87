"""Hostile module output through a real hypercorn server, for both loaders
and both module kinds: the `mirror` fixtures answer with exactly the bytes a
test sends them (HTTP-handler wire format, or WAGI CGI output), so a test
plays a module that returns a 1xx status, injects headers with every kind of
line break, sends connection-specific headers or lies about Content-Length.

Every such answer must be a 502 naming the module in the log, nothing the
module wrote may reach the client as a header, and the server must stay up
(over HTTP/1.1 and h2c).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.harness import DIST, Instance, full_plugins, installed, registry_toml, spawn, wasm_built, wasm_config

LOADERS = ("wasmer-loader", "wasmtime-loader")

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(not installed(*LOADERS, "errors"), reason="both loader plugins are needed"),
    pytest.mark.skipif(not wasm_built(), reason="guest modules not built (make wasm)"),
]

_U32 = struct.Struct("<I")


def wire(status: int, headers: Sequence[tuple[bytes, bytes]] = (), body: bytes = b"") -> bytes:
    """An HTTP-handler response in the wire format (docs/wasm-abi.md)."""
    out = bytearray(_U32.pack(status) + _U32.pack(len(headers)))
    for name, value in headers:
        out += _U32.pack(len(name)) + name + _U32.pack(len(value)) + value
    return bytes(out + _U32.pack(len(body)) + body)


def hostile_registry(workdir: Path, loader: str) -> str:
    config = wasm_config(workdir / f"cache-{loader}")
    config["modules"] += [
        {"name": "mirror", "path": str(DIST / "mirror.wasm"), "kind": "http"},
        {"name": "mirror_wagi", "path": str(DIST / "mirror_wagi.wasm"), "kind": "wasi"},
    ]
    config["routes"] += [
        {"path": "/mirror", "module": "mirror", "methods": ["POST"]},
        {"path": "/mirror-wagi", "module": "mirror_wagi", "methods": ["POST"]},
    ]
    plugins = full_plugins(workdir, wasm=config)
    if loader != "wasmer-loader":
        plugins = {(loader if name == "wasmer-loader" else name): value for name, value in plugins.items()}
    return registry_toml(plugins)


@pytest.fixture(scope="module", params=LOADERS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    loader = str(request.param)
    workdir = tmp_path_factory.mktemp(f"hostile-{loader}")
    instance = spawn(hostile_registry(workdir, loader), workdir)
    yield instance
    instance.stop()


def alive(server: Instance) -> None:
    assert server.process.poll() is None, server.log_path.read_text(errors="replace")[-3000:]
    assert httpx.get(server.base + "/healthz", timeout=5).status_code == 200


def bad_response_logged(server: Instance, module: str) -> bool:
    return any(r.get("event") == "wasm.bad_response" and r.get("module") == module for r in server.log_lines())


NOT_FINAL = (0, 1, 100, 101, 102, 103, 199, 600, 999, 1000, 2**32 - 1)


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2c"])
@pytest.mark.parametrize("status", NOT_FINAL)
def test_handler_status_that_is_not_final_is_502(server: Instance, status: int, http2: bool) -> None:
    with httpx.Client(base_url=server.base, http1=not http2, http2=http2, timeout=10) as client:
        response = client.post("/mirror", content=wire(status, [(b"x-a", b"b")], b"body"))
        assert response.status_code == 502, response.text
        assert "mirror" in response.text and "x-a" not in response.headers
        assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    alive(server)
    assert bad_response_logged(server, "mirror")


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2c"])
@pytest.mark.parametrize("status", [b"100 Continue", b"101 Switching Protocols", b"102", b"103 Early Hints", b"600", b"99", b"2000", b"abc", b"-200"])
def test_cgi_status_that_is_not_final_is_502(server: Instance, status: bytes, http2: bool) -> None:
    with httpx.Client(base_url=server.base, http1=not http2, http2=http2, timeout=10) as client:
        response = client.post("/mirror-wagi", content=b"Status: " + status + b"\nX-A: b\n\nbody")
        assert response.status_code == 502, response.text
        assert "mirror_wagi" in response.text and "x-a" not in response.headers
    alive(server)
    assert bad_response_logged(server, "mirror_wagi")


#: Every character a header line could be split at, or that is a control character.
BREAKS = ["\r", "\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x00", "\x7f", "\x1b", "\x9b"]


@pytest.mark.parametrize("brk", BREAKS, ids=[repr(b) for b in BREAKS])
def test_line_break_in_a_header_value_never_injects_a_header(server: Instance, brk: str) -> None:
    injected = f"x-a: a{brk}Set-Cookie: stolen=1{brk}:status: 200".encode()
    with httpx.Client(base_url=server.base, timeout=10) as client:
        cgi = client.post("/mirror-wagi", content=b"Content-Type: text/plain\n" + injected + b"\n\nbody")
        name, _, value = injected.partition(b": ")
        handler = client.post("/mirror", content=wire(200, [(name, value)], b"body"))
        for response in (cgi, handler):
            assert response.status_code == 502, (brk, response.status_code, response.headers)
            assert "set-cookie" not in response.headers
    alive(server)


@pytest.mark.parametrize(
    "header",
    [
        b"Transfer-Encoding: chunked",
        b"Connection: close",
        b"Keep-Alive: timeout=5",
        b"Upgrade: h2c",
        b"TE: trailers",
        b"Trailer: X-A",
        b"Proxy-Authenticate: Basic",
        b"Proxy-Connection: keep-alive",
        b"Content-Length: 999",
        b"Bad Name: x",
        b"X-A : x",
        b"(x): y",
        b" folded: x",
        b"no colon here",
    ],
)
def test_forbidden_or_malformed_headers_are_502(server: Instance, header: bytes) -> None:
    with httpx.Client(base_url=server.base, timeout=10) as client:
        cgi = client.post("/mirror-wagi", content=b"Content-Type: text/plain\n" + header + b"\n\nbody")
        assert cgi.status_code == 502, (header, cgi.headers)
        name, colon, value = header.partition(b":")
        if colon:
            handler = client.post("/mirror", content=wire(200, [(name, value.strip())], b"body"))
            assert handler.status_code == 502, (header, handler.headers)
    alive(server)


def test_pseudo_header_over_h2c_is_502(server: Instance) -> None:
    with httpx.Client(base_url=server.base, http1=False, http2=True, timeout=10) as client:
        for name in (b":status", b":path", b"location\x00"):
            response = client.post("/mirror", content=wire(200, [(name, b"301")], b"x"))
            assert response.status_code == 502 and response.http_version == "HTTP/2"
    alive(server)


@pytest.mark.parametrize(
    ("output", "body"),
    [
        (b"Content-Type: text/plain\n\nline one\n\nline three\n", b"line one\n\nline three\n"),
        (b"Content-Type: text/plain\r\n\r\nA\r\n\r\nB", b"A\r\n\r\nB"),
        (b"Content-Type: text/plain\n\nA\r\n\r\nSet-Cookie: no=1\r\n\r\n", b"A\r\n\r\nSet-Cookie: no=1\r\n\r\n"),
        (b"Status: 201 Created\r\nX-Mixed: 1\n\r\n\n\nbody", b"\n\nbody"),
        (b"\nonly a body", b"only a body"),
    ],
)
def test_cgi_body_with_blank_lines_is_kept_whole(server: Instance, output: bytes, body: bytes) -> None:
    with httpx.Client(base_url=server.base, timeout=10) as client:
        response = client.post("/mirror-wagi", content=output)
    assert response.status_code in (200, 201), response.text
    assert response.content == body and "set-cookie" not in response.headers


def test_cgi_output_without_a_header_block_is_502(server: Instance) -> None:
    with httpx.Client(base_url=server.base, timeout=10) as client:
        for output in (b"", b"just text", b"X-A: 1\r\nno blank line", b"X-A: " + b"a" * 70_000 + b"\n\n"):
            assert client.post("/mirror-wagi", content=output).status_code == 502
    alive(server)


def test_matching_content_length_is_accepted(server: Instance) -> None:
    with httpx.Client(base_url=server.base, timeout=10) as client:
        cgi = client.post("/mirror-wagi", content=b"Content-Length: 4\nX-Ok: yes\n\nbody")
        handler = client.post("/mirror", content=wire(200, [(b"content-length", b"4"), (b"x-ok", b"yes")], b"body"))
    for response in (cgi, handler):
        assert (response.status_code, response.content, response.headers["x-ok"]) == (200, b"body", "yes")


def test_module_stderr_is_a_log_field_never_a_raw_line(server: Instance) -> None:
    forged = '{"event": "forged", "level": "critical"}'
    with httpx.Client(base_url=server.base, timeout=10) as client:
        response = client.post("/mirror-wagi", content=b"X-Ok: 1\n\nbody", headers={"X-Stderr": f"first\\n{forged}\\nlast"})
    assert response.status_code == 200
    records = server.log_lines()
    assert not any(r.get("event") == "forged" for r in records)
    logged = [r for r in records if r.get("event") == "wasm.stderr" and r.get("module") == "mirror_wagi"]
    assert logged and logged[-1]["stderr"] == f"first\n{forged}\nlast"
    raw = server.log_path.read_text(errors="replace").splitlines()
    assert forged not in raw


# -- hypothesis: module output generated byte by byte -------------------------------

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: Line breaks of every kind (ASCII and Unicode) and control characters.
TRICKY = ["\r", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x00", "\x7f", "\x9b", "\t", " ", ":"]
INJECTION = st.sampled_from(TRICKY).map(lambda brk: f"{brk}X-Injected: 1{brk}")
VALUE = st.lists(st.one_of(st.text(alphabet=st.characters(codec="utf-8"), max_size=8), st.sampled_from(TRICKY), INJECTION), max_size=6).map("".join)
NAME = st.one_of(st.sampled_from(["X-A", "Content-Type", "Set-Cookie", "Location", "Status", ":status", "Transfer-Encoding", "X_A"]), VALUE)
BODY = st.lists(st.sampled_from(["", "line", "\n", "\r\n", "\n\n", "\r\n\r\n", "X-Injected: 1"]), max_size=8).map("".join)


def check_answer(response: httpx.Response, module_headers: Sequence[str]) -> None:
    assert response.status_code < 500 or response.status_code == 502, response.text
    assert "x-injected" not in response.headers or "X-Injected" in module_headers


@FUZZ
@given(status=st.one_of(st.integers(0, 1000), st.integers(0, 2**32 - 1)), headers=st.lists(st.tuples(NAME, VALUE), max_size=4), body=BODY, http2=st.booleans())
def test_fuzzed_handler_output(server: Instance, status: int, headers: list[tuple[str, str]], body: str, http2: bool) -> None:
    if 500 <= status <= 599:
        status = 502  # a module's own 5xx would pass through as sent
    raw = wire(status, [(n.encode(), v.encode()) for n, v in headers], body.encode())
    with httpx.Client(base_url=server.base, http1=not http2, http2=http2, timeout=10) as client:
        check_answer(client.post("/mirror", content=raw), [n for n, _ in headers])
    assert server.process.poll() is None


def cgi_header_names(output: bytes) -> list[str]:
    """The header names a reference CGI reading sees: lines split at LF (a
    CR before it dropped) up to the first empty one. A name a module wrote
    on its own line is its header, not an injection."""
    names = []
    for raw in output.split(b"\n"):
        line = raw.removesuffix(b"\r")
        if not line:
            break
        names.append(line.partition(b":")[0].decode("latin-1"))
    return names


STATUS_LINE = st.one_of(st.integers(0, 1000).map(str), VALUE, st.sampled_from(["101 Switching", "200 OK", "100", "204", "404 \r\nX-Injected: 1"]))


@FUZZ
@given(status=STATUS_LINE, headers=st.lists(st.tuples(NAME, VALUE), max_size=4), end=st.sampled_from(["\n", "\r\n"]), body=BODY, http2=st.booleans())
def test_fuzzed_cgi_output(server: Instance, status: str, headers: list[tuple[str, str]], end: str, body: str, http2: bool) -> None:
    if status.strip()[:1] == "5":
        status = "502"
    lines = [f"Status: {status}", *(f"{n}: {v}" for n, v in headers)]
    output = (end.join(lines) + end + end + body).encode()
    with httpx.Client(base_url=server.base, http1=not http2, http2=http2, timeout=10) as client:
        response = client.post("/mirror-wagi", content=output)
        check_answer(response, cgi_header_names(output))
        if response.status_code != 502 and not any("\n" in text for text in (status, *(f"{n}{v}" for n, v in headers))):
            assert response.content == (b"" if response.status_code in (204, 304) else body.encode())
    assert server.process.poll() is None
