"""The host API (`wasmkernel` imports) on every loader: grants, key-value, outbound HTTP, faults."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs
from wasmkernel_wasm import WasmError, WasmTrap
from wasmkernel_wasm.testing import loader_of, wasm_plugins

from wasmkernel import Application
from wasmkernel.testing import app_from, running

METHODS = ["GET", "POST", "PUT", "DELETE"]


def hostcalls_config(dist: Path, cache: Path, **grants: Any) -> dict[str, Any]:
    """Module `hc` (granted `grants`) on /h/..., and `bare` (granted nothing) on /n/...."""
    return {
        "cache_dir": str(cache),
        "workers": 2,
        "watch": False,
        "modules": [
            {"name": "hc", "path": str(dist / "hostcalls.wasm"), "kind": "http", **grants},
            {"name": "bare", "path": str(dist / "hostcalls.wasm"), "kind": "http"},
        ],
        "routes": [
            {"path": "/h/{op}", "module": "hc", "methods": METHODS},
            {"path": "/h/{op}/{arg}", "module": "hc", "methods": METHODS},
            {"path": "/n/{op}/{arg}", "module": "bare", "methods": METHODS},
        ],
    }


def make(loader_name: str, config: dict[str, Any]) -> Application:
    return app_from({"request-id": {}, "router": {}, **wasm_plugins(loader_name, config)})


async def test_ungranted_capability_fails_the_request_and_names_the_registry_key(loader_name: str, dist: Path, tmp_path: Path) -> None:
    app = make(loader_name, hostcalls_config(dist, tmp_path / "cache", log=True))
    async with running(app) as client:
        for path, capability, key in [
            ("/n/var/x", "variables", "vars = {"),
            ("/n/kv/x", "key-value", "kv = {"),
            ("/h/var/x", "variables", "vars = {"),
        ]:
            with capture_logs() as logs:
                response = await client.get(path)
            assert response.status_code == 500
            assert "refused" in response.json()["detail"]
            assert "modules[" not in response.text  # no host details for the client
            (line,) = [entry for entry in logs if entry["event"] == "wasm.host_call_denied"]
            assert capability in line["reason"] and key in line["reason"]
            assert "plugins.wasm.config.modules[" in line["reason"]
        assert (await client.get("/h/version")).text == "1\n"  # the next request is served


async def test_log_line_carries_module_request_id_and_fields(loader_name: str, dist: Path, tmp_path: Path) -> None:
    app = make(loader_name, hostcalls_config(dist, tmp_path / "cache", log=True))
    async with running(app) as client:
        with capture_logs() as logs:
            response = await client.post("/h/log?user=ada&event=x", content=b"signed in", headers={"X-Request-ID": "req-123"})
    assert response.status_code == 200
    (line,) = [entry for entry in logs if entry["event"] == "wasm.guest_log"]
    assert line["module"] == "hc" and line["message"] == "signed in" and line["guest"] == {"user": "ada", "event": "x"}
    assert line["event"] == "wasm.guest_log"  # a guest's fields sit under `guest`: never the host's keys


async def test_vars_with_secret_reference(loader_name: str, dist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HC_SECRET", "s3cret")
    config = hostcalls_config(dist, tmp_path / "cache", vars={"greeting": "hi", "key": {"env": "HC_SECRET"}})
    async with running(make(loader_name, config)) as client:
        assert (await client.get("/h/var/greeting")).text == "hi"
        assert (await client.get("/h/var/key")).text == "s3cret"
        assert (await client.get("/h/var/missing")).status_code == 404


async def test_kv_is_shared_by_every_worker_and_quotas_fail_cleanly(loader_name: str, dist: Path, tmp_path: Path) -> None:
    # Each entry costs its key, its value and 64 bytes: a, ab, c and d fit in 450 bytes, e does not.
    config = hostcalls_config(dist, tmp_path / "cache", kv={"max_value_bytes": 64, "max_total_bytes": 450, "max_key_bytes": 16})
    async with running(make(loader_name, config)) as client:
        assert (await client.put("/h/kv/a", content=b"one")).status_code == 204
        results: list[str] = []

        async def read() -> None:
            results.append((await client.get("/h/kv/a")).text)

        async with trio.open_nursery() as nursery:  # concurrent calls land on both workers/threads
            for _ in range(8):
                nursery.start_soon(read)
        assert results == ["one"] * 8
        await client.put("/h/kv/ab", content=b"two")
        assert (await client.get("/h/list", params={"prefix": "a"})).text == "a\nab\n"
        with capture_logs() as logs:
            too_big = await client.put("/h/kv/b", content=b"x" * 65)
            long_key = await client.put("/h/kv/" + "k" * 17, content=b"x")
            await client.put("/h/kv/c", content=b"x" * 60)
            await client.put("/h/kv/d", content=b"x" * 60)
            over_total = await client.put("/h/kv/e", content=b"x" * 60)
        assert (too_big.status_code, long_key.status_code, over_total.status_code) == (507, 507, 507)
        assert "max_value_bytes = 64" in too_big.text and "max_total_bytes = 450" in over_total.text
        refused = [entry for entry in logs if entry["event"] == "wasm.host_call_failed"]
        assert len(refused) == 3 and all(entry["module"] == "hc" for entry in refused)
        assert (await client.get("/h/kv/e")).status_code == 404  # the refused write changed nothing
        assert (await client.delete("/h/kv/a")).status_code == 200
        assert (await client.get("/h/kv/a")).status_code == 404


async def test_sqlite_kv_survives_a_restart_and_namespaces_are_per_module(loader_name: str, dist: Path, tmp_path: Path) -> None:
    kv = {"backend": "sqlite", "path": str(tmp_path / "kv.sqlite3")}
    config = hostcalls_config(dist, tmp_path / "cache", kv=kv)
    async with running(make(loader_name, config)) as client:
        assert (await client.put("/h/kv/k", content=b"kept")).status_code == 204
    async with running(make(loader_name, config)) as client:
        assert (await client.get("/h/kv/k")).text == "kept"
    config["modules"][1]["kv"] = kv  # same file, its own namespace
    async with running(make(loader_name, config)) as client:
        assert (await client.get("/n/kv/k")).status_code == 404


@pytest.fixture
async def target(nursery: trio.Nursery) -> AsyncIterator[int]:
    """A tiny HTTP server on loopback: /ok, /away (302 to another port), /big (2 MB), /slow (never answers)."""

    async def serve(stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            data += chunk
        path = data.split(b" ", 2)[1]
        if path == b"/slow":
            await trio.sleep_forever()
        body, extra = b"pong " + (data.split(b"x-from: ", 1)[-1].split(b"\r\n", 1)[0] if b"x-from" in data else b""), b""
        if path == b"/away":
            extra = b"location: http://127.0.0.1:1/\r\n"
        if path == b"/big":
            body = b"x" * 2_000_000
        status = b"302 Found" if path == b"/away" else b"200 OK"
        with contextlib.suppress(trio.BrokenResourceError):  # the host stops reading at its size cap
            await stream.send_all(
                b"HTTP/1.1 " + status + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n" + extra + b"connection: close\r\n\r\n" + body
            )
        await stream.aclose()

    listeners = await nursery.start(functools.partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
    yield listeners[0].socket.getsockname()[1]


async def test_outbound_http_only_to_allowed_origins(loader_name: str, dist: Path, tmp_path: Path, target: int) -> None:
    origin = f"http://127.0.0.1:{target}"
    config = hostcalls_config(dist, tmp_path / "cache", http={"allow": [origin], "timeout": 3.0, "max_response_bytes": 100_000})
    async with running(make(loader_name, config)) as client:
        ok = await client.get("/h/fetch", params={"url": f"{origin}/ok"})
        assert (ok.status_code, ok.text) == (200, "200 pong hostcalls")
        with capture_logs() as logs:
            denied = await client.get("/h/fetch", params={"url": "http://127.0.0.1:9/x"})
            redirect = await client.get("/h/fetch", params={"url": f"{origin}/away"})
            big = await client.get("/h/fetch", params={"url": f"{origin}/big"})
            slow = await client.get("/h/fetch", params={"url": f"{origin}/slow"})
        assert denied.status_code == 500
        (line,) = [entry for entry in logs if entry["event"] == "wasm.host_call_denied"]
        assert "http://127.0.0.1:9 is not allowed" in line["reason"] and "http.allow" in line["reason"]
        assert redirect.status_code == 502 and "redirect to http://127.0.0.1:1 refused" in redirect.text
        assert big.status_code == 502 and "max_response_bytes" in big.text
        assert slow.status_code == 502 and "timed out" in slow.text
        assert (await client.get("/h/fetch", params={"url": f"{origin}/ok"})).status_code == 200


RAW = {
    "raw_log": 5,
    "raw_var_get": 2,
    "raw_kv_get": 2,
    "raw_kv_set": 4,
    "raw_kv_delete": 2,
    "raw_kv_list": 2,
    "raw_http_request": 2,
    "raw_result_read": 2,
}
i32 = st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, 1, -1, 65536, 2**24, 2**31 - 1]))


async def test_out_of_bounds_buffers_trap_only_that_call(loader_name: str, dist: Path, tmp_path: Path, target: int) -> None:
    """Fuzz: any pointer/length either works or traps that call (500); the module keeps serving."""
    config = hostcalls_config(
        dist, tmp_path / "cache", log=True, vars={"greeting": "hi"}, kv={}, http={"allow": [f"http://127.0.0.1:{target}"], "timeout": 0.5}
    )
    app = make(loader_name, config)
    async with running(app) as client:
        loader = loader_of(app)
        outcomes: dict[str, int] = {"ok": 0, "trap": 0}

        def one(function: str, args: list[int]) -> None:
            try:
                trio.from_thread.run(loader.call, "hc", function, *args)
                outcomes["ok"] += 1
            except WasmTrap as exc:
                assert "out-of-bounds buffer" in exc.reason or "out of bounds" in exc.reason, exc.reason
                outcomes["trap"] += 1
            except WasmError as exc:
                raise AssertionError(f"{function}{tuple(args)}: {exc}") from None

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(st.sampled_from(sorted(RAW)).flatmap(lambda f: st.tuples(st.just(f), st.lists(i32, min_size=RAW[f], max_size=RAW[f]))))
        def fuzz(case: tuple[str, list[int]]) -> None:
            one(*case)

        with capture_logs():
            await trio.to_thread.run_sync(fuzz)
        assert outcomes["trap"] > 0
        assert (await client.get("/h/var/greeting")).text == "hi"
        with capture_logs() as logs, pytest.raises(WasmTrap) as trapped:
            await loader.call("hc", "raw_kv_get", 2**31 - 1, 16)
        assert "host call kv_get was given an out-of-bounds buffer" in trapped.value.reason
        assert any(entry["event"] == "wasm.host_call_fault" for entry in logs)


async def test_sqlite_stores_opening_one_new_file_at_once_all_open_it_in_wal_mode(tmp_path: Path) -> None:
    """Worker processes start together. SQLite refuses a second switch of a new
    file to WAL at once (no busy timeout): that must not fail the startup."""
    from wasmkernel_wasm.hostapi.kv import SqliteBackend

    async def open_one(path: Path, opened: list[SqliteBackend]) -> None:
        opened.append(await trio.to_thread.run_sync(SqliteBackend, path))

    for attempt in range(60):
        path, opened = tmp_path / f"kv-{attempt}.sqlite3", list[SqliteBackend]()
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(open_one, path, opened)
        for backend in opened:
            backend.close()
        with contextlib.closing(sqlite3.connect(path)) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_many_tiny_entries_meet_the_quota(backend: str, tmp_path: Path) -> None:
    """Issue 22 class 12: 64 KiB of quota holds about a thousand one-byte
    entries (each costs 64 bytes besides its bytes), not 32,000."""
    from wasmkernel_wasm.hostapi.grants import KvGrant
    from wasmkernel_wasm.hostapi.kv import ENTRY_COST, MemoryBackend, Namespace, SqliteBackend

    store = MemoryBackend() if backend == "memory" else SqliteBackend(tmp_path / "kv.sqlite3")
    namespace = Namespace(store, "tiny", KvGrant(max_total_bytes=64 * 1024))
    stored = 0
    while store.set(namespace.name, namespace.key(stored.to_bytes(4, "big")), b"x", namespace.grant.max_total_bytes):
        stored += 1
    assert stored == 64 * 1024 // (4 + 1 + ENTRY_COST)
    assert store.delete(namespace.name, (0).to_bytes(4, "big"))
    assert store.set(namespace.name, b"back", b"x", namespace.grant.max_total_bytes)  # a delete gives its whole cost back
    store.close()


def test_a_sqlite_file_from_before_entry_costs_is_recounted(tmp_path: Path) -> None:
    from wasmkernel_wasm.hostapi.kv import ENTRY_COST, SqliteBackend

    path = tmp_path / "old.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(
            "CREATE TABLE kv (ns TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID;"
            "CREATE TABLE usage (ns TEXT PRIMARY KEY, bytes INTEGER NOT NULL);"
            "INSERT INTO kv VALUES ('m', x'6b', x'7676'); INSERT INTO usage VALUES ('m', 3);"
        )
    SqliteBackend(path).close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT bytes FROM usage WHERE ns = 'm'").fetchone()[0] == 3 + ENTRY_COST
