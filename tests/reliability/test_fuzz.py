"""Hostile input, in-process: hypothesis drives the assembled application
(every installed feature plugin) with raw ASGI scopes — arbitrary methods,
paths, raw paths, query strings, header bytes (invalid UTF-8, control
characters, overlong values, duplicates) and bodies — and checks that it
never answers 5xx, never leaks a traceback, and always completes the response.

Raw scopes reach the app exactly as crafted: httpx (and a real server's h11)
would normalise or refuse much of this before the application sees it.
"""

from __future__ import annotations

import gzip
import json
import struct
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import trio
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from wasmkernel_validation import QUERY

from tests.reliability.harness import API_KEY, ENV, full_plugins, installed, token
from wasmkernel import Application, AuthRequirement, Request, Route, hookimpl
from wasmkernel.testing import app_from

FEATURES = ("request-id", "access-log", "metrics", "compression", "errors", "cors", "limits", "auth-jwt", "auth-apikey", "authz", "validation")
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


class HostileTargets:
    """Routes touching every parser: JSON bodies, schemas, path converters,
    headers, cookies, query parameters, authentication."""

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        item = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 50}, "qty": {"type": "integer", "minimum": 0}}, "required": ["name"]}
        query = {"type": "object", "properties": {"q": {"type": "string", "maxLength": 20}, "n": {"type": "integer", "minimum": 1}}}
        return [
            Route("/items", self.create, methods=["POST"], name="items.create", body_schema=item),
            Route("/items/{item_id:int}", self.show, name="items.show"),
            Route("/search", self.search, name="search", query_schema=query),
            Route("/echo", self.echo, methods=["GET", "POST", "PUT", "DELETE", "PATCH"], name="echo"),
            Route("/raw-json", self.raw_json, methods=["POST"], name="raw_json"),
            Route("/files/{rest:path}", self.file, name="files"),
            Route("/private", self.echo, name="private", auth=AuthRequirement(scopes=("matrix:compute",))),
        ]

    async def create(self, request: Request) -> dict[str, Any]:
        return {"created": await request.json()}

    async def show(self, request: Request) -> dict[str, Any]:
        return {"id": request.path_params["item_id"]}

    async def search(self, request: Request) -> dict[str, Any]:
        return {"query": request.stash.get(QUERY)}

    async def echo(self, request: Request) -> dict[str, Any]:
        return {
            "path": request.path,
            "query": request.query.to_dict(),
            "headers": dict(request.headers),
            "cookies": request.cookies,
            "text": await request.text(),
            "subject": request.identity.subject if request.identity else None,
        }

    async def raw_json(self, request: Request) -> dict[str, Any]:
        return {"value": await request.json()}

    async def file(self, request: Request) -> str:
        return str(request.path_params["rest"])


def build_app(monkeypatch: pytest.MonkeyPatch) -> Application:
    """Every installed plugin but the WASM ones (their worker processes are
    covered against the real server), plus the hostile targets."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    wasm = ("wasm", "wasm-http", "wasm-filters", "wasmer-loader", "matmul")
    plugins: dict[str, Any] = {name: {"config": config} for name, config in full_plugins(Path("unused")).items() if name not in wasm}
    plugins["limits"] = {"config": {"max_body_bytes": 4096, "timeout_seconds": 5}}
    plugins["t"] = {}
    return app_from(plugins, extra_plugins={"t": HostileTargets()})


class Target:
    """The assembled app, with a short repr for hypothesis' failure reports."""

    def __init__(self, app: Application) -> None:
        self.app = app

    def __repr__(self) -> str:
        return "Target(<every installed feature plugin + HostileTargets>)"

    def __call__(self, scope: dict[str, Any], body: bytes = b"", chunks: int = 1) -> tuple[int, dict[bytes, bytes], bytes]:
        async def main() -> tuple[int, dict[bytes, bytes], bytes]:
            return await call(self.app, scope, body, chunks)

        return trio.run(main)


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    missing = [name for name in FEATURES if not installed(name)]
    if missing:
        pytest.skip(f"feature plugins not installed: {', '.join(missing)}")
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield Target(build_app(monkeypatch))


async def call(app: Application, scope: dict[str, Any], body: bytes, chunks: int = 1) -> tuple[int, dict[bytes, bytes], bytes]:
    """One ASGI HTTP call; returns status, last value of each header, body.
    Fails if the response is missing, doubled or left unfinished."""
    messages: list[dict[str, Any]] = []
    size = max(1, len(body) // chunks + 1)
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    incoming = [{"type": "http.request", "body": part, "more_body": index < len(parts) - 1} for index, part in enumerate(parts)]

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        messages.append(dict(message))

    async with trio.open_nursery() as nursery:
        await app.startup(nursery)
        try:
            with trio.fail_after(30):
                await app(scope, receive, send)
        finally:
            await app.shutdown()
            nursery.cancel_scope.cancel()
    starts = [m for m in messages if m["type"] == "http.response.start"]
    assert len(starts) == 1, messages
    bodies = [m for m in messages if m["type"] == "http.response.body"]
    assert bodies, "response body never sent"
    assert not bodies[-1].get("more_body", False), "response left unfinished"
    headers = {bytes(k).lower(): bytes(v) for k, v in starts[0].get("headers", [])}
    return int(starts[0]["status"]), headers, b"".join(m.get("body", b"") for m in bodies)


def scope_of(method: str, path: str, raw_path: bytes, query: bytes, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": raw_path,
        "root_path": "",
        "query_string": query,
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


def assert_clean(status: int, headers: dict[bytes, bytes], body: bytes) -> None:
    assert status < 500, (status, body[:500])
    if headers.get(b"content-encoding") == b"gzip":
        body = gzip.decompress(body)
    lowered = body.lower()
    for leak in (b"traceback", b'file "/', b"site-packages", b'.py", line'):
        assert leak not in lowered, body[:500]
    if status >= 400 and body and b"json" in headers.get(b"content-type", b"") and b"content-encoding" not in headers:
        json.loads(body)  # error bodies are well-formed JSON


ROUTE_PATHS = [
    "/items",
    "/items/1",
    "/items/-1",
    "/items/99999999999999999999",
    "/search",
    "/echo",
    "/raw-json",
    "/files/a/../../etc/passwd",
    "/private",
    "/healthz",
    "/readyz",
    "/health",
    "/metrics",
    "/hello",
    "/openapi.json",
    "/",
]
# No lone surrogates: servers build `path` with urllib's unquote (errors="replace");
# see test_lone_surrogate_in_path for what the app does with one.
SPECIAL = ["%00", "%zz", "%", "%2e%2e/", "..", "//", "\x00", "\ufffd", "\u202e", "é", "%C0%AF", "%ff%fe", ";", "?", "#", "\r\n", " ", "*"]
HEADER_NAMES = [
    b"authorization",
    b"x-api-key",
    b"content-type",
    b"content-length",
    b"x-request-id",
    b"origin",
    b"access-control-request-method",
    b"access-control-request-headers",
    b"accept-encoding",
    b"cookie",
    b"host",
    b"accept",
    b"if-none-match",
    b"transfer-encoding",
]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "BREW", "get", ""]

paths = st.builds(
    lambda base, extra: base + extra, st.sampled_from(ROUTE_PATHS), st.lists(st.sampled_from(SPECIAL) | st.text(max_size=8), max_size=4).map("".join)
)
header_values = st.binary(max_size=64) | st.sampled_from(
    [b"", b"-1", b"1" * 40, b"Bearer ", b"Bearer a.b.c", b"application/json", b"gzip;q=2, br;q=-1", b"\xff\xfe", b"x" * 9000]
)
header_lists = st.lists(st.tuples(st.sampled_from(HEADER_NAMES) | st.binary(min_size=1, max_size=20), header_values), max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
bodies = st.binary(max_size=256) | json_values.map(lambda v: json.dumps(v).encode()) | st.just(b"x" * 5000)


@SETTINGS
@given(method=st.sampled_from(METHODS), path=paths, raw_path=st.none() | st.binary(max_size=40), query=st.binary(max_size=80), headers=header_lists)
def test_arbitrary_requests_never_500(target: Target, method: str, path: str, raw_path: bytes | None, query: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    raw = raw_path if raw_path is not None else path.encode("utf-8", "surrogateescape")
    assert_clean(*target(scope_of(method, path, raw, query, headers), b""))


@SETTINGS
@given(
    path=st.sampled_from(["/items", "/raw-json", "/echo"]),
    body=bodies,
    content_type=st.sampled_from([b"application/json", b"application/problem+json", b"text/plain", b"application/json; charset=latin-1", b""]),
    chunks=st.integers(1, 4),
    declared=st.sampled_from(["actual", "none", "wrong", "huge"]),
)
def test_arbitrary_bodies_never_500(target: Target, path: str, body: bytes, content_type: bytes, chunks: int, declared: str) -> None:
    headers = [(b"content-type", content_type)]
    lengths = {"actual": str(len(body)).encode(), "wrong": str(len(body) // 2).encode(), "huge": b"99999999999999999999"}
    if declared in lengths:
        headers.append((b"content-length", lengths[declared]))
    assert_clean(*target(scope_of("POST", path, path.encode(), b"", headers), body, chunks))


@SETTINGS
@given(query=st.lists(st.tuples(st.sampled_from(["q", "n", "Q", "n[]", ""]), st.text(max_size=30)), max_size=5), raw_tail=st.binary(max_size=20))
def test_query_strings_reaching_validation(target: Target, query: list[tuple[str, str]], raw_tail: bytes) -> None:
    status, headers, body = target(scope_of("GET", "/search", b"/search", urlencode(query).encode() + raw_tail, []), b"")
    assert_clean(status, headers, body)
    assert status in (200, 400, 422), body


@SETTINGS
@given(credential=st.sampled_from(["bearer", "apikey"]), garbage=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_garbage_credentials_are_401(target: Target, credential: str, garbage: bytes) -> None:
    name = b"authorization" if credential == "bearer" else b"x-api-key"
    value = b"Bearer " + garbage if credential == "bearer" else garbage
    status, headers, body = target(scope_of("GET", "/private", b"/private", b"", [(name, value)]), b"")
    assert_clean(status, headers, body)
    # An empty/whitespace bearer or key may count as "no credentials": still 401.
    assert status == 401, (status, body)


def test_valid_credentials_pass(target: Target) -> None:
    """The fuzz targets are reachable: a real token and key get through."""
    for name, value in ((b"authorization", f"Bearer {token()}".encode()), (b"x-api-key", API_KEY.encode())):
        status, _, body = target(scope_of("GET", "/private", b"/private", b"", [(name, value)]), b"")
        assert status == 200, body


@pytest.mark.parametrize(
    "raw_path",
    [b"/files/%00", b"/files/%zz", b"/files/..%2f..%2fetc%2fpasswd", b"/items/%C0%AF", b"/" + b"a" * 70000, b"/echo?%ff=%fe", b"/%ff%fe%fd"],
)
def test_raw_path_oddities(target: Target, raw_path: bytes) -> None:
    path = raw_path.decode("latin-1").split("?")[0]
    assert_clean(*target(scope_of("GET", path, raw_path, b"", []), b""))


def test_overlong_and_duplicated_headers(target: Target) -> None:
    headers = [(b"x-request-id", b"a" * 100000), (b"cookie", b"a=" + b"\xff" * 5000), (b"accept-encoding", b"gzip, " * 2000)]
    headers += [(b"x-request-id", b"one"), (b"x-request-id", b"two"), (b"content-type", b"application/json"), (b"content-type", b"text/plain")]
    headers += [(b"x-dup", str(i).encode()) for i in range(2000)]
    status, response_headers, body = target(scope_of("GET", "/echo", b"/echo", b"", headers), b"")
    assert_clean(status, response_headers, body)
    assert status == 200


def test_lone_surrogate_in_path(target: Target) -> None:
    assert_clean(*target(scope_of("GET", "/items\udcff", b"/items%ff", b"", []), b""))


# -- component output is hostile input ------------------------------------------------


@pytest.fixture(scope="module")
def component_app(tmp_path_factory: pytest.TempPathFactory) -> Application:
    """The components plugin serving a component that answers whatever status and
    header the request body names (plugins/components/tests: HEADER, wasm-tools)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "components" / "tests"))
    from test_host import HEADER
    from wat import BODY, component

    config = {
        "cache_dir": str(tmp_path_factory.mktemp("component-cache")),
        "modules": [{"name": "h", "path": str(component(HEADER, BODY))}],
        "routes": [{"prefix": "/h", "module": "h", "methods": ["POST"]}],
    }
    return app_from({"router": {}, "errors": {}, "wasm": {}, "components": {"config": config}})


component_responses = st.tuples(
    st.integers(min_value=0, max_value=0xFFFF) | st.sampled_from([100, 101, 199, 200, 204, 304, 599, 600]),
    # Names are strings in WIT: a component cannot pass invalid UTF-8 without breaking the canonical ABI (a trap).
    st.text(min_size=1, max_size=24).filter(lambda t: "\0" not in t).map(str.encode) | st.sampled_from([b"connection", b"x-ok", b":status", b"Content-Length"]),
    st.binary(max_size=40),
)


#: The answer recorded when the body was cut off after the head went out.
CUT = -1


async def _answers(app: Application, cases: list[tuple[int, bytes, bytes]]) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """Each case's response, from one running application (starting it is what costs)."""
    from wasmkernel.testing import running

    answers: list[tuple[int, dict[bytes, bytes], bytes]] = []
    async with running(app) as client:
        for status, name, value in cases:
            try:
                response = await client.post("/h", content=struct.pack("<H", status) + name + b"\0" + value)
            except AssertionError:  # httpx's ASGI transport refuses a response whose body never completed
                answers.append((CUT, {}, b""))
                continue
            answers.append((response.status_code, {k.lower(): v for k, v in response.headers.raw}, response.content))
    return answers


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(cases=st.lists(component_responses, min_size=1, max_size=25))
@example(cases=[(200, b"Content-Length", b"1"), (204, b"content-length", b"0"), (200, b"x-ok", b"fine")])
def test_component_responses_are_checked(component_app: Application, cases: list[tuple[int, bytes, bytes]]) -> None:
    """Whatever status and header a component answers with, the client gets
    either exactly that or a clean refusal: 422 (the host refused the field,
    the component said so), 502 (an unsendable status), a body cut off when it
    falls short of the Content-Length the component declared; never a crash."""
    for (status, name, value), (answered, headers, content) in zip(cases, trio.run(_answers, component_app, cases)):
        assert answered != 500, content[:300]
        if answered == CUT:  # a declared length the (empty) body does not meet: never served as whole
            assert name.lower() == b"content-length" and value.isdigit() and int(value) > 0, (status, name, value)
            continue
        if answered == 422:
            assert content in (b"0", b"1")
        elif 100 <= status <= 199:
            assert answered == 502
        else:
            assert answered == (status if 200 <= status <= 599 else 200), (status, answered, content[:200])
            if name.lower() != b"content-length":
                assert headers.get(name.lower()) == value


# -- what a component puts in an outgoing request -----------------------------------

#: Characters that split or smuggle URL parts, mixed with ordinary ones.
_URL_CHARS = st.sampled_from(list("@#\\/?:[]%. \t\r\n\x00é") + list("abc019-_~")) | st.characters(blacklist_categories=["Cs"])
_AUTHORITIES = st.text(_URL_CHARS, max_size=30) | st.from_regex(r"[a-z0-9.-]{1,20}(:[0-9]{1,5})?", fullmatch=True)
_PATHS = st.text(_URL_CHARS, max_size=30) | st.from_regex(r"/[a-z0-9/?=&%.-]{0,30}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(scheme=st.sampled_from(["http", "https"]), authority=_AUTHORITIES, path=_PATHS)
def test_outgoing_request_parts_cannot_change_the_origin(scheme: str, authority: str, path: str) -> None:
    """Whatever authority and path a component sets, either the host refuses them
    (`set-*` answers an error) or the URL it sends to parses back into exactly those
    parts, for the allow-list check (urlsplit) and the client (httpx) alike."""
    from urllib.parse import urlsplit

    import httpx
    from wasmkernel_components.table import GuestFault
    from wasmkernel_components.wasi.http import _authority, _path, outgoing_url

    try:
        _authority(authority)
        _path(path)
    except GuestFault:
        return
    url = outgoing_url(scheme, authority, path)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.fragment, parts.username) == (scheme, authority, "", None)
    assert parts.path.startswith("/")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:  # the host's outbound check refuses it too (checked_url)
        return
    assert parsed.host == (parts.hostname or "") and parsed.port == parts.port


_FIELD_NAMES = st.sampled_from(["x-a", "X-A", "content-length", "connection", ":path", "te", "bad name", ""]) | st.text(max_size=12)
_FIELD_VALUES = st.binary(max_size=40) | st.sampled_from([b"ok", b"a\r\nb", b"\x00", b"\xe9t\xe9", b"v" * 5000])


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["set", "append", "delete"]), _FIELD_NAMES, st.lists(_FIELD_VALUES, max_size=3)), max_size=80))
def test_component_header_fields_stay_sendable_and_bounded(ops: list[tuple[str, str, list[bytes]]]) -> None:
    """Whatever a component does to a `fields`, every entry stays sendable, the set
    stays within its bounds, and what it holds is charged to the call."""
    import math

    from wasmkernel_components.call import Call, bind
    from wasmkernel_components.wasi.http import MAX_FIELDS, MAX_FIELDS_BYTES, Fields

    from wasmkernel import header_problem

    call = Call(component="fuzz", token=None, deadline=math.inf)  # type: ignore[arg-type]
    bind(call)
    try:
        fields = Fields()
        for op, name, values in ops:
            if op == "set":
                fields.set(name, values)
            elif op == "append":
                fields.append(name, values[0] if values else b"")
            else:
                fields.delete(name)
        assert all(header_problem(name, value.decode("latin-1")) is None for name, value in fields.entries)
        assert len(fields.entries) <= MAX_FIELDS
        assert sum(len(name) + len(value) for name, value in fields.entries) <= MAX_FIELDS_BYTES
        assert call.table.held == fields.charged
        fields.dropped()
        assert call.table.held == 0
    finally:
        bind(None)
