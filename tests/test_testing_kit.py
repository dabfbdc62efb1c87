"""The test kit itself (`wasmkernel.testing` and its pytest plugin): the SSE
parser against the standard's line rules, the fixtures' lifetimes, streams
and WebSockets of a served application, the fake identity, the polling wait
in virtual time."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
import trio_websocket

from wasmkernel import Application, AuthRequirement, Request, Route, StreamingResponse, WebSocket, hookimpl
from wasmkernel.testing import (
    EventStreamParser,
    FakeIdentity,
    RunApp,
    ServeApp,
    ServerEvent,
    free_port,
    listens_on,
    start_on_free_port,
    stop_process,
    wait_until,
)


class Kit:
    """Routes for the kit's tests: a stream paced by the test, an echo
    WebSocket, a protected route; records its lifespan."""

    def __init__(self) -> None:
        self.lifespan: list[str] = []
        self.go = trio.Event()

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        return [
            Route("/stream", self.stream),
            Route("/go", self.release, methods=["POST"]),
            Route("/echo", self.echo, websocket=True),
            Route("/me", self.me, auth=AuthRequirement(scopes=("kit:read",))),
        ]

    @hookimpl
    async def wasmkernel_startup(self, app: Application) -> None:
        self.lifespan.append("startup")

    @hookimpl
    async def wasmkernel_shutdown(self, app: Application) -> None:
        self.lifespan.append("shutdown")

    async def stream(self, request: Request) -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            yield b"retry: 1000\r\n\r\n"
            yield "data: line\u2028same line\r\ndata: second\r\n\r\n".encode()
            await self.go.wait()  # only a client reading as it arrives sees the first event before this
            yield b"event: done\nid: 7\ndata: {}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def release(self, request: Request) -> dict[str, bool]:
        self.go.set()
        return {"released": True}

    async def echo(self, ws: WebSocket) -> None:
        await ws.accept()
        async for message in ws:
            await ws.send(message)

    async def me(self, request: Request) -> dict[str, Any]:
        assert request.identity is not None
        return {"subject": request.identity.subject, "scheme": request.identity.scheme}


def parse(*chunks: bytes) -> tuple[EventStreamParser, list[ServerEvent]]:
    parser = EventStreamParser()
    return parser, [event for chunk in chunks for event in parser.feed(chunk)]


def test_sse_lines_end_at_cr_lf_or_crlf_only() -> None:
    text = "data: a\u2028b\u0085c\u2029d\rdata: e\r\n\r" + "id: 1\nevent: x\ndata: f\n\n"
    whole = parse(text.encode())[1]
    assert whole == [ServerEvent(None, "message", "a\u2028b\u0085c\u2029d\ne"), ServerEvent("1", "x", "f")]
    # Split anywhere, inside a CRLF or a UTF-8 sequence: the same events.
    raw = text.encode()
    for cut in range(1, len(raw)):
        assert parse(raw[:cut], raw[cut:])[1] == whole, cut


def test_sse_fields_comments_retry_and_ids() -> None:
    parser, events = parse(b"\xef\xbb\xbf: hello\n\nretry: 1500\nretry: x\n\nevent: e\n\ndata\nid: 2\x00\n\nid: 3\ndata:  two spaces\ndata\n\nno-dispatch")
    assert parser.comments == ["hello"]
    assert parser.retry == 1500
    # An event without data is not dispatched; an id with NUL is ignored; the last id sticks.
    assert events == [ServerEvent(None, "message", ""), ServerEvent("3", "message", " two spaces\n")]


def test_the_plugin_is_loaded_from_its_entry_point(pytestconfig: pytest.Config, project_root: Path) -> None:
    assert pytestconfig.pluginmanager.has_plugin("wasmkernel")
    assert (project_root / "plugin_registry.toml").is_file()


async def test_run_app_starts_for_the_test_and_stops_after_it(run_app: RunApp) -> None:
    kit = Kit()
    client = await run_app({"router": {}, "kit": {}}, extra_plugins={"kit": kit}, kernel={"allow_unenforced": True})
    assert kit.lifespan == ["startup"]
    assert (await client.post("/go")).json() == {"released": True}
    second = await run_app({"router": {}, "kit": {}}, extra_plugins={"kit": Kit()}, kernel={"allow_unenforced": True})
    assert (await second.post("/go")).status_code == 200


async def test_served_stream_arrives_as_it_is_sent_and_the_websocket_echoes(serve_app: ServeApp) -> None:
    kit = Kit()
    served = await serve_app({"router": {}, "kit": {}}, extra_plugins={"kit": kit}, kernel={"allow_unenforced": True})
    async with served.sse("/stream") as events:
        assert events.response.headers["content-type"] == "text/event-stream"
        first = await events.next()
        assert first.data == "line\u2028same line\nsecond" and events.retry == 1000
        assert not kit.go.is_set()
        await served.http.post("/go")
        assert await events.next() == ServerEvent("7", "done", "{}")
    async with served.websocket("/echo") as ws:
        await ws.send_message("hello")
        assert await ws.get_message() == "hello"
    with pytest.raises(trio_websocket.ConnectionRejected):
        async with served.websocket("/nowhere"):
            pass


async def test_fake_identity_is_enforced_by_authz(run_app: RunApp, fake_identity: FakeIdentity) -> None:
    client = await run_app({"fake-auth": {}, "authz": {}, "router": {}, "kit": {}}, extra_plugins={"fake-auth": fake_identity, "kit": Kit()})
    assert (await client.get("/me")).status_code == 401
    assert (await client.get("/me", headers=fake_identity.headers("ada"))).status_code == 403
    allowed = await client.get("/me", headers=fake_identity.headers("ada", scopes=["kit:read", "other"]))
    assert allowed.json() == {"subject": "ada", "scheme": "test"}
    assert (await client.get("/me", headers=fake_identity.headers("invalid"))).status_code == 401
    assert fake_identity.calls == 4


async def test_wait_until_polls_in_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    calls = []

    def third_time() -> int | None:
        calls.append(trio.current_time())
        return len(calls) if len(calls) == 3 else None

    assert await wait_until(third_time, interval=1.0) == 3
    assert calls[-1] - calls[0] == 2.0
    with pytest.raises(AssertionError, match=r"not true within 60 s: the moon \(last value: False\)"):
        await wait_until(lambda: False, timeout=60, interval=1.0, what="the moon")


LISTENER = "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); time.sleep(600)"


def test_a_server_whose_port_was_taken_starts_on_another(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another program took the "free" port first (other suites share the
    machine): answering on it is not enough, the server is started again elsewhere."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        taken_port = taken.getsockname()[1]
        ports = iter([taken_port, free_port()])
        monkeypatch.setattr("wasmkernel.testing.processes.free_port", lambda: next(ports))

        def start(port: int) -> subprocess.Popen[bytes]:
            with (tmp_path / f"{port}.log").open("wb") as log:
                return subprocess.Popen([sys.executable, "-c", LISTENER, str(port)], stdout=log, stderr=subprocess.STDOUT)

        process, port = start_on_free_port(start, lambda port: (tmp_path / f"{port}.log").read_text())
        try:
            assert port != taken_port and listens_on(process, port)
            assert "Address already in use" in (tmp_path / f"{taken_port}.log").read_text()
        finally:
            stop_process(process)
