"""Hostile input at the host-API boundary, on both loaders: hypothesis drives
the `hostcalls` module's raw imports with arbitrary methods, URLs, header
names and values (any bytes), key and value bytes and counter values. Every
call either succeeds or fails by itself (an error code for the guest, or a
trap of that call); none crashes the host: no `wasm.host_call_crashed` line,
and afterwards every host-API path still serves (issue 22, class 2)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs
from wasmkernel_wasm import ArrayIn, WasmError
from wasmkernel_wasm.testing import dist, loader_of

from tests.reliability.test_host_boundary import Upstream, assert_host_api_serves, forward_config, loader_name, make, upstream
from wasmkernel.testing import running

__all__ = ["dist", "loader_name", "upstream"]

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
U32 = struct.Struct("<I")


def field(data: bytes) -> bytes:
    return U32.pack(len(data)) + data


def envelope(method: bytes, url: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    """The `http_request` buffer (docs/wasm-abi.md)."""
    pairs = b"".join(field(name) + field(value) for name, value in headers)
    return field(method) + field(url) + U32.pack(len(headers)) + pairs + field(body) + U32.pack(500)


anything = st.binary(max_size=64)
texts = st.one_of(st.text(max_size=40).map(lambda text: text.encode("utf-8", "surrogatepass")), anything)
methods = st.one_of(st.sampled_from([b"GET", b"POST", b"get", b"G\xc3\x89T", b"", b"G T", b"X" * 40]), texts)
counters = st.one_of(
    st.integers(-(2**70), 2**70).map(lambda n: str(n).encode()),
    st.sampled_from([b" 12 ", b"1_0", b"+5", b"012", b"-0", b"1e3", b"9223372036854775807", b"-9223372036854775808", b"0x10", b"\xd9\xa1"]),
    anything,
)


async def test_the_host_api_boundary_never_crashes_the_host(loader_name: str, dist: Path, tmp_path: Path, upstream: Upstream) -> None:
    origin = upstream.origin.encode()
    urls = st.one_of(st.tuples(st.just(origin), texts).map(lambda parts: parts[0] + b"/" + parts[1]), texts, st.just(origin + b"/" + b"a" * 70_000))
    headers = st.lists(st.tuples(st.one_of(st.sampled_from([b"accept-language", b"x-ok", b"host"]), texts), texts), max_size=4)
    app = make(loader_name, forward_config(dist, tmp_path / "cache", upstream, timeout=2.0))
    async with running(app) as client:
        loader = loader_of(app)
        outcomes = {"ok": 0, "failed": 0}

        def call(function: str, *args: Any) -> None:
            try:
                trio.from_thread.run(loader.call, "hc", function, *args)
                outcomes["ok"] += 1
            except WasmError as exc:  # a call failing by itself (a refused origin traps its call)
                assert app.boundary.status(exc) in (500, 502), exc
                outcomes["failed"] += 1

        @SETTINGS
        @given(methods, urls, headers, st.binary(max_size=256))
        def outbound(method: bytes, url: bytes, pairs: list[tuple[bytes, bytes]], body: bytes) -> None:
            request = envelope(method, url, pairs, body)
            call("raw_http_request", ArrayIn(request), len(request))

        @SETTINGS
        @given(st.binary(min_size=0, max_size=600), st.binary(max_size=2048), counters, st.integers(-(2**31), 2**31 - 1))
        def key_value(key: bytes, value: bytes, counter: bytes, delta: int) -> None:
            call("raw_kv_set", ArrayIn(key or b"k"), len(key or b"k"), ArrayIn(value or b"v"), len(value or b"v"))
            call("raw_kv_get", ArrayIn(key or b"k"), len(key or b"k"))
            call("raw_kv_set", ArrayIn(b"n"), 1, ArrayIn(counter or b"0"), len(counter or b"0"))
            call("raw_kv_incr", ArrayIn(b"n"), 1, delta)
            call("raw_kv_list", ArrayIn(key[:8]), len(key[:8]))
            call("raw_kv_delete", ArrayIn(key or b"k"), len(key or b"k"))

        with capture_logs() as logs:
            await trio.to_thread.run_sync(outbound)
            await trio.to_thread.run_sync(key_value)
            await assert_host_api_serves(client, upstream)
        assert outcomes["ok"] > 0
        crashed = [entry for entry in logs if entry["event"] in ("wasm.host_call_crashed", "task.crashed", "wasm.host_rpc_connection_failed")]
        assert not crashed, crashed[:3]
