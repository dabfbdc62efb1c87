"""Issue 22, class 2 (and 4, 5): a host call can fail only its own call.

A harmless C module (`wasm_modules/c_forward`) forwards what an anonymous
visitor sends into the host API: its `Accept-Language` as an outbound header,
a path parameter into its outbound URL, a key into key-value. Whatever the
visitor sends, that call fails cleanly and every other module's host calls
keep working, on both loaders (wasmer reaches the host over its RPC socket,
wasmtime from its call threads). Also: the RPC server is supervised (it
restarts and `/readyz` says so while it is down), outbound responses are
decoded by bounded decompressors, an outbound exchange has one deadline and
ends with its module call, and host calls have threads of their own.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import brotli
import pytest
import trio
from structlog.testing import capture_logs
from wasmkernel_wasm import WasmRequest
from wasmkernel_wasm.hostapi.outbound import Decoder
from wasmkernel_wasm.testing import LOADERS, dist, loader_of, use_loader, wasm_plugins

from tests.redis_server import RedisServer
from wasmkernel import Application
from wasmkernel.testing import app_from, running, wait_until

__all__ = ["dist"]

MIB = 1024 * 1024


@pytest.fixture(params=LOADERS)
def loader_name(request: pytest.FixtureRequest) -> str:
    return use_loader(str(request.param))


class Upstream:
    """An allowed origin on loopback: /lang and /items/* echo, /bomb/* answer
    compression bombs, /drip sends its body one byte at a time forever."""

    def __init__(self) -> None:
        self.port = 0
        self.open_drips = 0
        self.drips_seen = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, stream: trio.SocketStream) -> None:
        data = b""
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            while b"\r\n\r\n" not in data:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                data += chunk
            path = data.split(b" ", 2)[1]
            if path == b"/drip":
                await self._drip(stream)
                return
            headers, body = b"", b"ok " + path
            if path.startswith(b"/bomb/"):
                coding = path[6:].decode()
                headers, body = b"content-encoding: " + coding.replace("-", ", ").encode() + b"\r\n", bombs(coding)
            elif path == b"/small/gzip":
                headers, body = b"content-encoding: gzip\r\n", gzip.compress(b"small and fine")
            head = b"HTTP/1.1 200 OK\r\ncontent-length: " + str(len(body)).encode() + b"\r\n" + headers + b"connection: close\r\n\r\n"
            await stream.send_all(head + body)
            await stream.aclose()

    async def _drip(self, stream: trio.SocketStream) -> None:
        self.open_drips += 1
        self.drips_seen += 1
        try:
            await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\nconnection: close\r\n\r\n")
            while True:
                await stream.send_all(b"x")
                await trio.sleep(0.05)
        finally:
            self.open_drips -= 1


@functools.cache
def bombs(coding: str) -> bytes:
    """64 MiB of zeros in a few kilobytes, under `coding` ("gzip", "gzip-gzip", "br")."""
    zeros = b"\0" * (64 * MIB)
    if coding == "br":
        return bytes(brotli.compress(zeros, quality=5))
    once = gzip.compress(zeros, 9)
    return gzip.compress(once, 9) if coding == "gzip-gzip" else once


@pytest.fixture
async def upstream(nursery: trio.Nursery) -> AsyncIterator[Upstream]:
    server = Upstream()
    listeners = await nursery.start(functools.partial(trio.serve_tcp, server.serve, 0, host="127.0.0.1"))
    server.port = listeners[0].socket.getsockname()[1]
    yield server


def forward_config(dist: Path, cache: Path, upstream: Upstream, kv: dict[str, Any] | None = None, **http: Any) -> dict[str, Any]:
    """`fw` (the C forwarder) on /fw/...; `hc` (hostcalls) on /h/... with the same grants."""
    grants = {"vars": {"upstream": upstream.origin}, "kv": kv or {}, "http": {"allow": [upstream.origin], "timeout": 5.0, **http}, "log": True}
    return {
        "cache_dir": str(cache),
        "workers": 2,
        "watch": False,
        "modules": [
            {"name": "fw", "path": str(dist / "c_forward.wasm"), "kind": "http", **grants},
            {"name": "hc", "path": str(dist / "hostcalls.wasm"), "kind": "http", **grants},
        ],
        "routes": [
            {"path": "/fw/lang", "module": "fw"},
            {"path": "/fw/item/{id}", "module": "fw"},
            {"path": "/fw/kv/{key}", "module": "fw", "methods": ["POST"]},
            {"path": "/fw/log", "module": "fw", "methods": ["POST"]},
            {"path": "/h/{op}", "module": "hc", "methods": ["GET", "POST"]},
            {"path": "/h/{op}/{arg}", "module": "hc", "methods": ["GET", "PUT", "POST"]},
        ],
    }


def make(loader_name: str, config: dict[str, Any], redis_url: str = "") -> Application:
    plugins: dict[str, Any] = {"request-id": {}, "router": {}, "health": {}, **wasm_plugins(loader_name, config)}
    if redis_url:
        plugins.update({"redis": {"config": {"url": redis_url}}, "wasm-kv-redis": {}})
    return app_from(plugins)


async def assert_host_api_serves(client: Any, upstream: Upstream) -> None:
    """Every host-API path of another module still works, and the server is ready."""
    assert (await client.put("/h/kv/alive", content=b"yes")).status_code == 204
    assert (await client.get("/h/kv/alive")).text == "yes"
    fetched = await client.get("/h/fetch", params={"url": f"{upstream.origin}/lang"})
    assert (fetched.status_code, fetched.text) == (200, "200 ok /lang")
    answers = []

    async def ready() -> bool:  # the Wasmer workers may still be warming up beside serving
        answers.append(await client.get("/readyz"))
        return answers[-1].status_code == 200 or "warming up" not in answers[-1].text

    await wait_until(ready, timeout=180, what="the workers' warm-up")
    assert answers[-1].status_code == 200, answers[-1].text


async def test_a_visitors_bytes_fail_only_that_call(loader_name: str, dist: Path, tmp_path: Path, upstream: Upstream) -> None:
    app = make(loader_name, forward_config(dist, tmp_path / "cache", upstream))
    async with running(app) as client:
        assert (await client.get("/fw/lang", headers={"accept-language": "en"})).text == "200 ok /lang"
        hostile = [
            client.get("/fw/lang", headers=[(b"accept-language", b"\xe9")]),
            client.get("/fw/lang", headers=[(b"accept-language", b"fr\x7f")]),
            client.get("/fw/item/%01"),
            client.get("/fw/item/a%20b"),
            client.get("/fw/item/%C3%A9"),
            client.get("/h/fetch", params={"url": f"{upstream.origin}/" + "a" * 60_000}),
            client.get("/h/fetch", params={"url": f"{upstream.origin}/x\r\nx-injected: 1"}),
            client.get("/h/fetch", params={"url": f"{upstream.origin}/lang", "method": "GÉT"}),
            client.get("/h/fetch", params={"url": f"{upstream.origin}/lang", "method": "G T"}),
            client.get("/h/fetch", params={"url": "http://[::1"}),
            client.get("/h/fetch", params={"url": f"{upstream.origin}:99999/"}),
        ]
        with capture_logs() as logs:
            for request in hostile:
                answer = await request
                assert answer.status_code == 502, answer.text
                assert "could not complete" not in answer.text and ("host error" not in answer.text or "host error 3:" in answer.text), answer.text
            await assert_host_api_serves(client, upstream)
        assert not [entry for entry in logs if entry["log_level"] in ("error", "critical") or entry["event"] == "wasm.host_call_crashed"]


async def test_counters_past_2_to_the_53_are_exact_on_every_backend(
    loader_name: str, dist: Path, tmp_path: Path, upstream: Upstream, redis_server: RedisServer
) -> None:
    for kv in ({"backend": "memory"}, {"backend": "sqlite", "path": str(tmp_path / "kv.sqlite3")}, {"backend": "redis"}):
        app = make(loader_name, forward_config(dist, tmp_path / "cache", upstream, kv=kv), redis_url=redis_server.url)
        async with running(app) as client:
            assert (await client.put("/h/kv/big", content=b"9007199254740993")).status_code == 204
            assert (await client.post("/h/incr/big")).text == "9007199254740994\n", kv
            assert (await client.put("/h/kv/top", content=b"9223372036854775807")).status_code == 204
            overflow = await client.post("/h/incr/top")
            assert overflow.status_code == 502 and "overflow" in overflow.text, (kv, overflow.text)
            for bad in (b" 12 ", b"1_0", b"+5", b"012", b"-0", b"1e3", b"\xd9\xa1", b"99999999999999999999"):
                assert (await client.put("/h/kv/odd", content=bad)).status_code == 204
                refused = await client.post("/h/incr/odd")
                assert refused.status_code == 502 and "not an integer counter" in refused.text, (kv, bad, refused.text)
            assert (await client.get("/h/kv/top")).text == "9223372036854775807"  # the refused increment changed nothing
            await assert_host_api_serves(client, upstream)


def _dies_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make wasmer's host-API server crash on its first connection (an injected bug)."""
    from wasmkernel_wasm.hostapi import rpc

    original = rpc.Server._connection
    died: list[bool] = []

    async def crash_first(self: rpc.Server, stream: trio.SocketStream) -> None:
        if not died:
            died.append(True)
            raise RuntimeError("injected: the host-API server dies")
        await original(self, stream)

    monkeypatch.setattr(rpc.Server, "_connection", crash_first)


async def test_the_rpc_server_going_down_is_reported(dist: Path, tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    app = make(use_loader("wasmer-loader"), forward_config(dist, tmp_path / "cache", upstream))
    loader_of(app).supervisor.backoff = 3600.0  # type: ignore[attr-defined]  # it stays down, so /readyz can be seen saying so
    _dies_once(monkeypatch)
    async with running(app) as client:

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await wait_until(ready, timeout=180, what="/readyz after the workers' warm-up")
        with capture_logs() as logs:
            await client.put("/h/kv/k", content=b"v")  # fails: the server dies under it
            for _ in range(600):  # polling: the crash is noticed after the PUT's answer
                down = await client.get("/readyz")
                if down.status_code == 503:
                    break
                await trio.sleep(0.05)
        assert down.status_code == 503, down.text
        assert down.json()["wasm"]["tasks"]["host-rpc"]["running"] is False
        assert any(entry["event"] == "task.crashed" for entry in logs)


async def test_the_rpc_server_is_restarted(dist: Path, tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    app = make(use_loader("wasmer-loader"), forward_config(dist, tmp_path / "cache", upstream))
    _dies_once(monkeypatch)
    async with running(app) as client:
        with capture_logs():
            await client.put("/h/kv/k", content=b"v")  # the first connection kills the server
            for _ in range(600):  # polling: until the supervisor restarted it (the crash is noticed after the PUT's answer)
                ready = await client.get("/readyz")
                if ready.status_code == 200 and ready.json()["wasm"]["tasks"]["host-rpc"]["restarts"] >= 1:
                    break
                await trio.sleep(0.05)
        assert ready.json()["wasm"]["tasks"]["host-rpc"]["restarts"] == 1
        await assert_host_api_serves(client, upstream)


async def test_compression_bombs_stop_at_the_cap(loader_name: str, dist: Path, tmp_path: Path, upstream: Upstream) -> None:
    """64 MiB of zeros behind a few kilobytes: the host never holds much more than the cap."""
    app = make(loader_name, forward_config(dist, tmp_path / "cache", upstream, max_response_bytes=64 * 1024))
    async with running(app) as client:
        small = await client.get("/h/fetch", params={"url": f"{upstream.origin}/small/gzip"})
        assert (small.status_code, small.text) == (200, "200 small and fine")
        for bomb in ("gzip", "gzip-gzip", "br"):
            bombs(bomb)  # made before measuring
            tracemalloc.start()
            try:
                answer = await client.get("/h/fetch", params={"url": f"{upstream.origin}/bomb/{bomb}"})
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert answer.status_code == 502 and "max_response_bytes = 65536" in answer.text, (bomb, answer.text)
            assert peak < 8 * MIB, (bomb, peak)
        await assert_host_api_serves(client, upstream)


@pytest.mark.parametrize("coding", ["gzip", "gzip, gzip", "br", "deflate"])
def test_decoders_never_hold_more_than_the_cap(coding: str) -> None:
    """1 GiB of zeros, compressed: each layer stops one byte past the cap."""
    zeros = b"\0" * (64 * MIB)
    if coding == "br":
        packed = bytes(brotli.compress(zeros, quality=1))
    elif coding == "deflate":
        packed = zlib.compress(zeros, 1)
    else:
        packed = gzip.compress(zeros, 1)
        if coding == "gzip, gzip":
            packed = gzip.compress(packed, 9)
    del zeros
    decoder = Decoder([part.strip() for part in coding.split(",")], 64 * 1024)
    from wasmkernel_wasm.hostapi import HostFailure

    with pytest.raises(HostFailure, match="exceeds max_response_bytes"):
        for start in range(0, len(packed), 16384):
            decoder.feed(packed[start : start + 16384])
        decoder.finish()
    assert max(decoder._sizes) <= 64 * 1024 + 1


async def test_an_outbound_exchange_has_one_deadline(loader_name: str, dist: Path, tmp_path: Path, upstream: Upstream) -> None:
    """A dripping origin (a byte every 50 ms) never trips a per-read timeout:
    the exchange's own deadline ends it, as a clean failure of that call."""
    config = forward_config(dist, tmp_path / "cache", upstream, timeout=1.0)
    config["modules"][1]["timeout"] = 20.0
    async with running(make(loader_name, config)) as client:
        answer = await client.get("/h/fetch", params={"url": f"{upstream.origin}/drip"})
        assert answer.status_code == 502 and "timed out" in answer.text, answer.text
        for _ in range(400):  # polling: the connection is closed once the deadline passed
            if upstream.open_drips == 0:
                break
            await trio.sleep(0.05)
        assert upstream.open_drips == 0


async def test_an_outbound_exchange_ends_with_its_module_call(loader_name: str, dist: Path, tmp_path: Path, upstream: Upstream) -> None:
    """The module's own time limit (1 s) is shorter than its grant's (60 s):
    when the call is over, its outbound exchange is cancelled, not left running."""
    config = forward_config(dist, tmp_path / "cache", upstream, timeout=60.0)
    config["modules"][1]["timeout"] = 1.0
    async with running(make(loader_name, config)) as client:
        answer = await client.get("/h/fetch", params={"url": f"{upstream.origin}/drip"})
        assert answer.status_code == 504, answer.text
        with trio.fail_after(30):  # a hang detector: the exchange would otherwise run for 60 s
            while upstream.open_drips:
                await trio.sleep(0.05)
        assert upstream.drips_seen == 1
        await assert_host_api_serves(client, upstream)


async def test_an_outbound_exchange_ends_when_its_client_leaves(loader_name: str, dist: Path, tmp_path: Path, upstream: Upstream) -> None:
    """A call cancelled from outside (what a client leaving does: the kernel
    cancels the module call) takes its outbound exchange with it."""
    config = forward_config(dist, tmp_path / "cache", upstream, timeout=60.0)
    config["modules"][1]["timeout"] = 60.0
    app = make(loader_name, config)
    async with running(app) as client:
        request = WasmRequest("GET", "/h/fetch", query=f"url={upstream.origin}/drip", params=(("op", "fetch"),))
        with trio.fail_after(30):  # a hang detector
            async with trio.open_nursery() as nursery:
                nursery.start_soon(loader_of(app).handle_http, "hc", request)
                while not upstream.drips_seen:  # polling: until the exchange is under way
                    await trio.sleep(0.05)
                nursery.cancel_scope.cancel()  # the client leaves
        with trio.fail_after(30):  # a hang detector: the exchange would otherwise run for 60 s
            while upstream.open_drips:
                await trio.sleep(0.05)
        await assert_host_api_serves(client, upstream)


async def test_host_calls_do_not_need_the_default_thread_pool(loader_name: str, dist: Path, tmp_path: Path, upstream: Upstream) -> None:
    """With every token of trio's default thread limiter taken (another
    subsystem flooding it), SQLite key-value and outbound HTTP still serve."""
    kv = {"backend": "sqlite", "path": str(tmp_path / "kv.sqlite3")}
    app = make(loader_name, forward_config(dist, tmp_path / "cache", upstream, kv=kv))
    async with running(app) as client:
        # Worker processes start through trio's default limiter (`open_process`): the warm-up ends first.
        await wait_until(lambda: loader_of(app).readiness()[0], timeout=180, what="the workers' warm-up")
        default = trio.to_thread.current_default_thread_limiter()
        holder = object()
        taken = 0
        try:
            while default.available_tokens:
                default.acquire_on_behalf_of_nowait((holder, taken))
                taken += 1
            with trio.fail_after(60):  # a hang detector: without their own threads these never return
                assert (await client.put("/h/kv/k", content=b"v")).status_code == 204
                assert (await client.get("/h/kv/k")).text == "v"
                fetched = await client.get("/h/fetch", params={"url": f"{upstream.origin}/lang"})
                assert fetched.status_code == 200
        finally:
            for index in range(taken):
                default.release_on_behalf_of((holder, index))


async def test_guest_logs_are_nested_and_bounded(loader_name: str, dist: Path, tmp_path: Path, upstream: Upstream) -> None:
    """Class 10: a guest's fields sit under `guest` (never the host's keys,
    `_record` included) and one call's lines stop at a byte budget."""
    from wasmkernel_wasm.hostapi.abi import LOG_BUDGET

    async with running(make(loader_name, forward_config(dist, tmp_path / "cache", upstream))) as client:
        with capture_logs() as logs:
            answer = await client.post("/fw/log", params={"n": "1000"}, content=b"\x01" * 4000)
        assert answer.status_code == 200
        lines = [entry for entry in logs if entry["event"] == "wasm.guest_log"]
        assert lines and all(entry["guest"]["_record"] == "forged" and entry["guest"]["status"] == "forged" for entry in lines)
        assert all("_record" not in entry and entry.get("status") is None and entry["log_level"] == "info" for entry in lines)
        rendered = sum(len(repr(entry["message"])) for entry in lines)
        assert rendered <= 2 * LOG_BUDGET  # 1000 lines of 4000 control characters would render to 24 MB
        (dropped,) = [entry for entry in logs if entry["event"] == "wasm.guest_log_dropped"]
        assert int(dropped["dropped"]) + len(lines) == 1000
