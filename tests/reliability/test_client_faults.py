"""Misbehaving clients against a real server (`wasmkernel run`, hypercorn's
trio worker): disconnects mid-request and mid-response, slowloris, oversized
and duplicated headers. Each fault must fail only its own connection while
normal requests keep being served with normal latency.

What hypercorn does (the server plugin sets keep_alive_timeout = 5 s,
read_timeout = 30 s):

- a connection that has not sent complete request headers is idle for
  hypercorn, so the keep-alive timer closes it 5 s after it opened, however
  slowly it keeps dripping bytes (header slowloris is dropped at ~5 s);
- once the headers are complete, read_timeout only bounds the gap between two
  reads: a body sent one byte per second is never dropped by hypercorn. The
  limits plugin's `timeout_seconds` bounds it instead (504).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from tests.reliability.harness import Instance, full_plugins, installed, registry_toml, spawn, token
from wasmkernel.testing import Latencies, assert_not_slowed, time_requests, wait_until

pytestmark = [pytest.mark.server, pytest.mark.skipif(not installed("limits", "errors", "hello", "access-log"), reason="feature plugins not installed")]

LIMIT_TIMEOUT = 3.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    workdir: Path = tmp_path_factory.mktemp("client-faults")
    plugins = full_plugins(workdir, limits={"timeout_seconds": LIMIT_TIMEOUT, "max_body_bytes": 65536})
    instance = spawn(registry_toml(plugins), workdir)
    yield instance
    instance.stop()
    crashes = [r for r in instance.log_lines() if r.get("event") == "request.failed" or r.get("level") in ("error", "critical")]
    assert not crashes, crashes[:3]


async def raw(port: int, data: bytes, read: bool = True, timeout: float = 30.0) -> bytes:
    """Send `data` on a fresh connection and read until the server closes
    (or `timeout` seconds pass: a hang guard)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        chunks = []
        if read:
            with trio.move_on_after(timeout):
                while chunk := await stream.receive_some(65536):
                    chunks.append(chunk)
        return b"".join(chunks)


async def latencies(base: str, count: int = 20, path: str = "/hello") -> Latencies:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        return await time_requests(client, path, count)


async def assert_normal(base: str, during: Latencies, before: Latencies) -> None:
    """Median within 3x the baseline (+10 ms), no request over 0.5 s or 25
    baseline medians (`assert_not_slowed`); the baseline is measured before
    the fault and again after it, the slower counts."""
    assert_not_slowed(during, [before, await latencies(base)])


def matmul_statuses(server: Instance) -> list[int]:
    return [r["status"] for r in server.log_lines() if r.get("event") == "request" and r.get("path") == "/api/matmul"]


@pytest.mark.latency
async def test_disconnect_mid_request_body(server: Instance) -> None:
    baseline = await latencies(server.base)
    logged = len(matmul_statuses(server))
    head = f"POST /api/matmul HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token()}\r\nContent-Type: application/json\r\nContent-Length: 50000\r\n\r\n"
    async with trio.open_nursery() as nursery:
        for _ in range(30):
            nursery.start_soon(raw, server.port, head.encode() + b'{"a": [[1, 2', False)
        during = await latencies(server.base)
    await assert_normal(server.base, during, baseline)
    statuses = (await wait_until(lambda: len(matmul_statuses(server)) >= logged + 30 and matmul_statuses(server), what="30 requests logged"))[logged:]
    assert statuses and set(statuses) <= {499}, statuses  # logged as "client went away", never 500


@pytest.mark.latency
async def test_disconnect_mid_response(server: Instance) -> None:
    """A large streamed asset (Swagger UI's bundle) abandoned after 1 KiB."""
    if not installed("openapi"):
        pytest.skip("openapi plugin (large static assets) not installed")
    baseline = await latencies(server.base)
    request = b"GET /docs/static/swagger-ui-bundle.js HTTP/1.1\r\nHost: x\r\n\r\n"

    async def abandon() -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        await stream.send_all(request)
        assert (await stream.receive_some(1024)).startswith(b"HTTP/1.1 200")
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        for _ in range(30):
            nursery.start_soon(abandon)
        during = await latencies(server.base)
    await assert_normal(server.base, during, baseline)
    async with httpx.AsyncClient(timeout=30) as client:
        assert (await client.get(server.base + "/docs/static/swagger-ui-bundle.js")).status_code == 200


async def test_disconnect_while_the_handler_computes(server: Instance) -> None:
    """The client leaves while a WASM call runs: the call finishes or is
    cancelled, the worker pool stays usable."""
    if not installed("wasmer-loader", "matmul"):
        pytest.skip("wasmer-loader/matmul not installed")
    for _ in range(5):
        await raw(server.port, b"GET /matmul?n=300 HTTP/1.1\r\nHost: x\r\n\r\n", read=False)
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(server.base + "/matmul?n=100")
    assert (response.status_code, response.json()["checksum"]) == (200, 749850)


@pytest.mark.latency
async def test_header_slowloris_is_dropped_by_keep_alive_timeout(server: Instance) -> None:
    """One header byte per 0.5 s: hypercorn closes the connection ~5 s after it opened."""
    baseline = await latencies(server.base)
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    started = time.monotonic()
    closed_after = None
    payload = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    async with trio.open_nursery() as nursery:

        async def drip() -> None:
            nonlocal closed_after
            try:
                for byte in payload:
                    await stream.send_all(bytes([byte]))
                    await trio.sleep(0.5)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                closed_after = time.monotonic() - started
            nursery.cancel_scope.cancel()

        async def watch() -> None:
            nonlocal closed_after
            with trio.move_on_after(12):
                data = await stream.receive_some(1024)
                if data == b"":
                    closed_after = time.monotonic() - started
            nursery.cancel_scope.cancel()

        nursery.start_soon(drip)
        nursery.start_soon(watch)
        await assert_normal(server.base, await latencies(server.base), baseline)
    await stream.aclose()
    assert closed_after is not None and 4.0 < closed_after < 5.0 + max(3.0, 50 * baseline.median), (closed_after, baseline.median)


async def test_body_slowloris_is_cut_by_the_limits_timeout(server: Instance) -> None:
    """Complete headers, then one body byte per 0.5 s: hypercorn's read_timeout
    (30 s between reads) never fires; the limits plugin answers 504."""
    baseline = await latencies(server.base)
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    async with stream:
        await stream.send_all(b"POST /echo-does-not-exist HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        # An unmatched path answers 404 at once, without reading the body:
        assert b" 404 " in await stream.receive_some(4096)
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    started = time.monotonic()
    head = f"POST /api/matmul HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token()}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    response = b""
    async with stream, trio.open_nursery() as nursery:
        await stream.send_all(head.encode())

        async def drip() -> None:
            try:
                for _ in range(100):
                    await stream.send_all(b" ")
                    await trio.sleep(0.5)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

        nursery.start_soon(drip)
        with trio.move_on_after(LIMIT_TIMEOUT + 30):
            response = await stream.receive_some(4096)
        nursery.cancel_scope.cancel()
    assert response.startswith(b"HTTP/1.1 504"), response[:200]
    assert LIMIT_TIMEOUT - 0.5 < time.monotonic() - started < LIMIT_TIMEOUT + max(3.0, 50 * baseline.median), baseline.median


@pytest.mark.latency
async def test_many_slowloris_connections_do_not_starve_others(server: Instance) -> None:
    baseline = await latencies(server.base)
    streams = [await trio.open_tcp_stream("127.0.0.1", server.port) for _ in range(200)]
    try:
        for stream in streams:
            await stream.send_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
        during = await latencies(server.base)
    finally:
        for stream in streams:
            await stream.aclose()
    await assert_normal(server.base, during, baseline)


@pytest.mark.parametrize(
    ("request_bytes", "statuses"),
    [
        # h11's limit on an incomplete request head: 16 KiB (hypercorn's h11_max_incomplete_size)
        (b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", {400, 431}),
        (b"GET /hello?" + b"q" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", {400, 414, 431}),
        # ~30 KiB of headers in one write: h11 checks its 16 KiB limit only on an
        # *incomplete* head, so a head arriving whole in one read (hypercorn reads
        # 64 KiB at a time) is accepted. Served, not crashed, either way.
        (b"GET /hello HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(3000)) + b"\r\n", {200, 400, 431}),
        (b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello", {400}),
        (b"GET /hello HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", {200, 400}),
        (b"GET /hello HTTP/1.1\r\n\r\n", {400}),
        (b"GET /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", {200, 400}),  # RFC 9112 6.1: chunked wins
        (b"GET /\x00\xff HTTP/1.1\r\nHost: x\r\n\r\n", {400, 404}),
        (b"GARBAGE\r\n\r\n", {400}),
        (b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Request-ID: a\r\nX-Request-ID: b\r\nAccept-Encoding: gzip\r\nAccept-Encoding: br\r\n\r\n", {200}),
    ],
    ids=[
        "header-70k",
        "url-70k",
        "3000-headers",
        "conflicting-content-length",
        "two-hosts",
        "no-host",
        "te-and-cl",
        "bytes-in-path",
        "garbage",
        "duplicated-headers",
    ],
)
async def test_malformed_requests_get_4xx(server: Instance, request_bytes: bytes, statuses: set[int]) -> None:
    # "Connection: close" so that an answered request ends the connection.
    response = await raw(server.port, request_bytes.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n", 1))
    assert response.startswith(b"HTTP/1.1 "), response[:100]
    status = int(response.split(b" ", 2)[1])
    assert status in statuses, response[:300]
    assert b"Traceback" not in response
    async with httpx.AsyncClient() as client:
        assert (await client.get(server.base + "/hello")).status_code == 200


async def test_declared_oversized_body_gets_413_without_100_continue(server: Instance) -> None:
    head = b"POST /api/matmul HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 10000000\r\n\r\n"
    response = await raw(server.port, head)
    assert response.startswith(b"HTTP/1.1 413 "), response[:200]
    assert b"100 Continue" not in response


async def test_100_continue_comes_when_the_application_reads_the_body(server: Instance) -> None:
    body = b'{"a": [[1, 2], [3, 4]], "b": [[5, 6], [7, 8]]}'
    head = f"POST /api/matmul HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token()}\r\nContent-Type: application/json\r\n"
    head += f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    async with stream:
        await stream.send_all(head.encode())
        with trio.fail_after(30):
            interim = await stream.receive_some(4096)
        assert interim.startswith(b"HTTP/1.1 100 "), interim
        await stream.send_all(body)
        response = b""
        with trio.move_on_after(30):
            while chunk := await stream.receive_some(65536):
                response += chunk
    assert response.startswith(b"HTTP/1.1 200 "), response[:300]
