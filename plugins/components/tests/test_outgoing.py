"""`wasi:http/outgoing-handler` on small hand-written components: the allow-list,
what a guest may put in a request, a hostile upstream, and requests in flight
when the call ends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
from wat import BODY, component

from wasmkernel.testing import running

OUTGOING_IMPORTS = """
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-request.headers" (func $request_headers (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]fields.clone" (func $clone (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[constructor]outgoing-request" (func $new_request (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-request.set-scheme" (func $set_scheme (param i32 i32 i32 i32 i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-request.set-authority" (func $set_authority (param i32 i32 i32 i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-request.set-path-with-query" (func $set_path (param i32 i32 i32 i32) (result i32)))
  (import "cm32p2|wasi:http/outgoing-handler@0.2" "handle" (func $send_request (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]future-incoming-response.subscribe" (func $future_subscribe (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]future-incoming-response.get" (func $future_get (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-response.status" (func $upstream_status (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-response.consume" (func $upstream_consume (param i32 i32)))
"""

#: Helpers: `$fail(out, a, b)` answers 599 with the two bytes `a b`; `$nul(p, end)` finds the next NUL.
FETCH_HELPERS = (
    BODY
    + """
  (func $fail (param $out i32) (param $a i32) (param $b i32)
    (local $s i32)
    (local.set $s (call $respond (local.get $out) (i32.const 599)))
    (i32.store8 (i32.const 300) (local.get $a))
    (i32.store8 (i32.const 301) (local.get $b))
    (call $send (local.get $s) (i32.const 300) (i32.const 2))
    (call $end (local.get $s)))
  (func $nul (param $p i32) (param $end i32) (result i32)
    (block $done (loop $scan
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (br_if $done (i32.eqz (i32.load8_u (local.get $p))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $scan)))
    (local.get $p))
"""
)

#: A forwarding proxy. The request body is `T scheme-name NUL authority NUL path`:
#: T is 'H' (scheme HTTP), 'S' (HTTPS), 'O' (other: scheme-name), 'F' (HTTP, then wait an
#: hour without looking at the response: the request stays in flight). An empty
#: path forwards the client's own path-with-query; the client's headers are always
#: forwarded (a clone of the incoming request's fields). The upstream's status and body
#: come back as the response; a refusal is a 599 whose two bytes say where ('s' scheme,
#: 'a' authority, 'p' path, 'h' handle, 'g' the response) and, for an error-code, which
#: case ('A' + its index).
FETCH = """
    (local $end i32) (local $n1 i32) (local $n2 i32) (local $req i32) (local $tag i32) (local $future i32)
    (local $resp i32) (local $in i32) (local $stream i32)
    (local.set $end (i32.add (i32.const 1024) (call $read_body (local.get $request))))
    (local.set $n1 (call $nul (i32.const 1025) (local.get $end)))
    (local.set $n2 (call $nul (i32.add (local.get $n1) (i32.const 1)) (local.get $end)))
    (local.set $req (call $new_request (call $clone (call $request_headers (local.get $request)))))
    (local.set $tag (i32.load8_u (i32.const 1024)))
    (if (call $set_scheme (local.get $req) (i32.const 1)
          (select (i32.const 0)
            (select (i32.const 1) (i32.const 2) (i32.eq (local.get $tag) (i32.const 0x53)))
            (i32.or (i32.eq (local.get $tag) (i32.const 0x48)) (i32.eq (local.get $tag) (i32.const 0x46))))
          (i32.const 1025) (i32.sub (local.get $n1) (i32.const 1025)))
      (then (call $fail (local.get $out) (i32.const 0x73) (i32.const 0x30)) (return)))
    (if (call $set_authority (local.get $req) (i32.const 1)
          (i32.add (local.get $n1) (i32.const 1)) (i32.sub (local.get $n2) (i32.add (local.get $n1) (i32.const 1))))
      (then (call $fail (local.get $out) (i32.const 0x61) (i32.const 0x30)) (return)))
    (if (i32.lt_u (i32.add (local.get $n2) (i32.const 1)) (local.get $end))
      (then
        (if (call $set_path (local.get $req) (i32.const 1)
              (i32.add (local.get $n2) (i32.const 1)) (i32.sub (local.get $end) (i32.add (local.get $n2) (i32.const 1))))
          (then (call $fail (local.get $out) (i32.const 0x70) (i32.const 0x30)) (return))))
      (else
        (call $path (local.get $request) (i32.const 208))
        (if (call $set_path (local.get $req) (i32.load8_u (i32.const 208)) (i32.load (i32.const 212)) (i32.load (i32.const 216)))
          (then (call $fail (local.get $out) (i32.const 0x70) (i32.const 0x31)) (return)))))
    (call $send_request (local.get $req) (i32.const 0) (i32.const 0) (i32.const 96))
    (if (i32.load8_u (i32.const 96))
      (then (call $fail (local.get $out) (i32.const 0x68) (i32.add (i32.const 65) (i32.load8_u (i32.const 104)))) (return)))
    (local.set $future (i32.load (i32.const 104)))
    (if (i32.eq (local.get $tag) (i32.const 0x46))
      (then (call $block (call $sleep_for (i64.const 3600000000000))) (return)))
    (call $block (call $future_subscribe (local.get $future)))
    (call $future_get (local.get $future) (i32.const 128))
    (if (i32.eqz (i32.load8_u (i32.const 128))) (then (call $fail (local.get $out) (i32.const 0x6e) (i32.const 0x30)) (return)))
    (if (i32.load8_u (i32.const 136)) (then (call $fail (local.get $out) (i32.const 0x78) (i32.const 0x30)) (return)))
    (if (i32.load8_u (i32.const 144))
      (then (call $fail (local.get $out) (i32.const 0x67) (i32.add (i32.const 65) (i32.load8_u (i32.const 152)))) (return)))
    (local.set $resp (i32.load (i32.const 152)))
    (local.set $stream (call $respond (local.get $out) (call $upstream_status (local.get $resp))))
    (call $upstream_consume (local.get $resp) (i32.const 176))
    (call $body_stream (i32.load (i32.const 180)) (i32.const 184))
    (local.set $in (i32.load (i32.const 188)))
    (block $closed
      (loop $copy
        (call $blocking_read (local.get $in) (i64.const 65536) (i32.const 48))
        (br_if $closed (i32.load8_u (i32.const 48)))
        (call $send (local.get $stream) (i32.load (i32.const 52)) (i32.load (i32.const 56)))
        (br $copy)))
    (call $end (local.get $stream))
"""

#: Indexes of `wasi:http/types.error-code` cases.
ERROR_CODES = {"connection-timeout": 8, "HTTP-request-denied": 15, "HTTP-request-URI-invalid": 19, "internal-error": 38}


def refusal(where: str, code: str | None = None) -> str:
    return where + (chr(65 + ERROR_CODES[code]) if code is not None else "0")


def target(scheme: str, authority: str, path: str = "") -> bytes:
    tag = {"http": "H", "https": "S", "forget": "F"}.get(scheme, "O" + scheme)
    return f"{tag}\0{authority}\0{path}".encode()


def _fetch() -> str:
    return str(component(FETCH, FETCH_HELPERS, imports=OUTGOING_IMPORTS))


def _app(make_app: Callable[..., Any], port: int, **http: Any) -> Any:
    grant = {"allow": [f"http://127.0.0.1:{port}"], "timeout": 2.0, "max_response_bytes": 1024 * 1024, **http}
    return make_app({"proxy": {"path": _fetch(), "http": grant, "timeout": 30.0}})


async def test_an_allowed_origin_is_reached(make_app: Callable[..., Any], hostile: Any) -> None:
    async with running(_app(make_app, hostile.port)) as client:
        answer = await client.post("/proxy", content=target("http", f"127.0.0.1:{hostile.port}", "/pong"))
    assert (answer.status_code, answer.text) == (200, "pong")


@pytest.mark.parametrize(
    ("scheme", "authority", "path", "expected"),
    [
        ("http", "127.0.0.2:{port}", "/pong", refusal("g", "HTTP-request-denied")),  # another host
        ("http", "127.0.0.1:1", "/pong", refusal("g", "HTTP-request-denied")),  # another port
        ("https", "127.0.0.1:{port}", "/pong", refusal("g", "HTTP-request-denied")),  # another scheme
        ("file", "127.0.0.1:{port}", "/etc/passwd", refusal("s")),  # not http(s)
        ("http", "127.0.0.1:{port}@evil.example", "/pong", refusal("a")),  # userinfo: the host is evil.example
        ("http", "evil.example#@127.0.0.1:{port}", "/pong", refusal("a")),
        ("http", "127.0.0.1:{port}\\@evil.example", "/pong", refusal("a")),
        ("http", "127.0.0.1:{port}/x", "/pong", refusal("a")),
        ("http", "127.0.0.1:{port} ", "/pong", refusal("a")),
        ("http", "", "/pong", refusal("a")),
        ("http", "127.0.0.1:{port}", "@evil.example/", refusal("p")),  # a path must start with '/'
        ("http", "127.0.0.1:{port}", "/a\r\nHost: evil.example", refusal("p")),
        ("http", "127.0.0.1:{port}", "/a#frag", refusal("p")),
    ],
)
async def test_the_allow_list_cannot_be_bypassed(make_app: Callable[..., Any], hostile: Any, scheme: str, authority: str, path: str, expected: str) -> None:
    async with running(_app(make_app, hostile.port)) as client:
        answer = await client.post("/proxy", content=target(scheme, authority.format(port=hostile.port), path))
        fine = await client.post("/proxy", content=target("http", f"127.0.0.1:{hostile.port}", "/pong"))
    assert (answer.status_code, answer.text) == (599, expected)
    assert fine.text == "pong" and hostile.seen == 1  # only the allowed request went out


async def test_a_forwarded_client_header_or_path_cannot_break_the_request(make_app: Callable[..., Any], hostile: Any) -> None:
    """The issue-22 class: a harmless proxy forwards an anonymous client's headers and
    path. Hop-by-hop headers never reach the upstream; a value the upstream cannot be
    sent fails that one request with an error-code, not the host."""
    async with running(_app(make_app, hostile.port)) as client:
        forwarded = await client.post(
            "/proxy/head?q=1",
            content=target("http", f"127.0.0.1:{hostile.port}"),
            headers=[("x-visitor", "ann"), ("upgrade", "websocket"), ("te", "trailers"), ("keep-alive", "5")],
        )
        latin = await client.post("/proxy/head", content=target("http", f"127.0.0.1:{hostile.port}"), headers=[(b"accept-language", "\xe9".encode("latin-1"))])
        again = await client.post("/proxy", content=target("http", f"127.0.0.1:{hostile.port}", "/pong"))
    assert forwarded.status_code == 200
    head = forwarded.content.lower()
    assert head.startswith(b"get /proxy/head?q=1 http/1.1") and b"x-visitor: ann" in head
    assert b"\r\nupgrade:" not in head and b"\r\nkeep-alive:" not in head and b"\r\nte:" not in head
    assert latin.status_code == 599 and latin.text == refusal("g", "internal-error")
    assert again.text == "pong"


@pytest.mark.parametrize(("path", "code"), [("/drip", "connection-timeout"), ("/big", "internal-error"), ("/bomb", "internal-error")])
async def test_a_hostile_upstream_fails_only_that_request(make_app: Callable[..., Any], hostile: Any, path: str, code: str) -> None:
    async with running(_app(make_app, hostile.port, timeout=0.5)) as client:
        answer = await client.post("/proxy", content=target("http", f"127.0.0.1:{hostile.port}", path))
        fine = await client.post("/proxy", content=target("http", f"127.0.0.1:{hostile.port}", "/pong"))
    assert (answer.status_code, answer.text) == (599, refusal("g", code))
    assert fine.text == "pong"


async def test_a_request_in_flight_is_cancelled_when_the_call_ends(make_app: Callable[..., Any], hostile: Any) -> None:
    """The guest hands a request over and waits; its client leaves: the call ends, and
    with it the upstream connection (not at the grant's hour-long timeout)."""
    app = _app(make_app, hostile.port, timeout=3600.0)
    (host,) = [plugin.instance.host for plugin in app.plugins if plugin.name == "components"]
    body = target("forget", f"127.0.0.1:{hostile.port}", "/hang")
    messages: list[dict[str, Any]] = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        while not hostile.open:  # the request reached the upstream (polling, no sleep barrier)
            await trio.sleep(0.01)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        pass

    scope = {"type": "http", "method": "POST", "path": "/proxy", "raw_path": b"/proxy", "query_string": b"", "headers": [], "http_version": "1.1"}
    async with running(app):
        with trio.fail_after(120):  # a deadlock guard, not a timing assertion
            await app(scope, receive, send)
            while host.running or hostile.open:  # the call ended and closed the upstream connection
                await trio.sleep(0.01)
    assert hostile.seen == 1
