"""The default middleware chain on WebSocket handshakes and sessions, in-process."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
import trio
import trio.testing
from structlog.testing import capture_logs

from wasmkernel import Application, AuthRequirement, Route, WebSocket, hookimpl
from wasmkernel.testing import WebSocketDenied, app_from, running, wait_until, websocket_connect
from wasmkernel.websocket import WebSocketDisconnect

SECRET = "s" * 32


class Chat:
    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        return [
            Route("/chat", self.chat, websocket=True, name="chat"),
            Route("/secret", self.chat, websocket=True, name="secret", auth=AuthRequirement(scopes=["chat:read"])),
        ]

    async def chat(self, ws: WebSocket) -> None:
        await ws.accept(subprotocol="chat" if "chat" in ws.subprotocols else None)
        async for message in ws:
            await ws.send(f"{ws.identity.subject if ws.identity else 'anonymous'}: {message!s}")


CHAIN: dict[str, dict[str, Any]] = {
    "metrics": {},
    "request-id": {},
    "access-log": {},
    "errors": {},
    "compression": {},
    "cors": {"config": {"allow_origins": ["https://app.example"]}},
    "limits": {"config": {"rate": 0.5, "burst": 4, "websocket_per_client": 2, "max_body_bytes": 100}},
    "authz": {},
    "auth-jwt": {"config": {"secret": SECRET}},
    "router": {},
}


def make_app(**overrides: dict[str, Any]) -> Application:
    return app_from({**CHAIN, **overrides, "chat": {}}, extra_plugins={"chat": Chat()})


def token(scope: str) -> str:
    return jwt.encode({"sub": "ann", "scope": scope, "exp": 2_000_000_000}, SECRET, algorithm="HS256")


async def test_access_log_line_and_metrics_per_connection() -> None:
    app = make_app()
    async with running(app) as http:
        with capture_logs() as logs:
            async with websocket_connect(app, "/chat", headers={"x-request-id": "abc-1"}) as ws:
                await ws.send("hi")
                assert await ws.receive() == "anonymous: hi"
                await ws.send("again")
                assert await ws.receive() == "anonymous: again"
                await ws.close(1000)
            await wait_until(lambda: [line for line in logs if line["event"] == "websocket"])
        line = next(line for line in logs if line["event"] == "websocket")
        assert line["status"] == 101 and line["messages_in"] == 2 and line["messages_out"] == 2
        assert line["close_code"] == 1000 and line["request_id"] == "abc-1" and line["route"] == "chat"
        metrics = (await http.get("/metrics")).text
    assert 'wasmkernel_websocket_messages_total{direction="in",route="chat"} 2.0' in metrics
    assert 'wasmkernel_websocket_closes_total{code="1000",route="chat"} 1.0' in metrics
    assert 'wasmkernel_websocket_connections{route="chat"} 0.0' in metrics
    assert 'wasmkernel_requests_total{method="GET",route="chat",status="101"} 1.0' in metrics


async def test_scopes_are_enforced_and_a_token_can_come_as_subprotocol() -> None:
    app = make_app()
    async with running(app):
        with pytest.raises(WebSocketDenied) as missing:
            async with websocket_connect(app, "/secret"):
                pass
        assert missing.value.status == 401
        assert (b"content-type", b"application/problem+json") in missing.value.headers
        with pytest.raises(WebSocketDenied) as weak:
            async with websocket_connect(app, "/secret", subprotocols=["chat", "bearer." + token("other")]):
                pass
        assert weak.value.status == 403
        async with websocket_connect(app, "/secret", subprotocols=["chat", "bearer." + token("chat:read")]) as ws:
            assert ws.subprotocol == "chat"
            await ws.send("x")
            assert await ws.receive() == "ann: x"
        async with websocket_connect(app, "/secret", headers={"authorization": "Bearer " + token("chat:read")}) as ws:
            await ws.send("y")
            assert await ws.receive() == "ann: y"


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [(None, True), ("http://testserver", True), ("https://app.example", True), ("https://evil.example", False), ("http://testserver.evil", False)],
)
async def test_origin_check(origin: str | None, allowed: bool) -> None:
    app = make_app()
    headers = {"origin": origin} if origin else {}
    async with running(app):
        if allowed:
            async with websocket_connect(app, "/chat", headers=headers) as ws:
                await ws.send("ok")
                assert await ws.receive() == "anonymous: ok"
        else:
            with pytest.raises(WebSocketDenied) as refused:
                async with websocket_connect(app, "/chat", headers=headers):
                    pass
            assert refused.value.status == 403


async def test_concurrent_connections_per_client_and_attempt_rate() -> None:
    app = make_app()
    async with running(app):
        async with websocket_connect(app, "/chat") as first, websocket_connect(app, "/chat") as second:
            with pytest.raises(WebSocketDenied) as third:
                async with websocket_connect(app, "/chat"):
                    pass
            assert third.value.status == 429
            # Another client is not affected.
            async with websocket_connect(app, "/chat", client=("10.0.0.2", 1)) as other:
                await other.send("a")
                assert await other.receive() == "anonymous: a"
            await first.send("b")
            assert await first.receive() == "anonymous: b"
            del second
        # burst = 4: 3 attempts made from this client so far, one more goes through, then 429.
        async with websocket_connect(app, "/chat"):
            pass
        with pytest.raises(WebSocketDenied) as limited:
            async with websocket_connect(app, "/chat"):
                pass
        assert limited.value.status == 429


async def test_max_message_size_and_idle_timeout(autojump_clock: trio.testing.MockClock) -> None:
    """The idle timeout in virtual time: it fires after 0.2 s of trio's clock, whatever the load."""
    app = make_app(limits={"config": {"max_body_bytes": 10, "websocket_idle_seconds": 0.2}})
    async with running(app):
        async with websocket_connect(app, "/chat") as ws:
            await ws.send("0123456789A")
            with pytest.raises(WebSocketDisconnect) as big:
                await ws.receive()
            assert big.value.code == 1009
        async with websocket_connect(app, "/chat") as ws:
            opened = trio.current_time()
            with trio.fail_after(2), pytest.raises(WebSocketDisconnect) as idle:
                await ws.receive()
            assert trio.current_time() - opened >= 0.2
            assert (idle.value.code, idle.value.reason) == (1000, "idle timeout")
