"""The channels plugin in an application served by hypercorn (real TCP):
SSE streams (fields, keep-alives, resume, the end of a stream when the
client leaves) and WebSocket fan-out, through the default chain's plugins."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import trio
import trio_websocket
from structlog.testing import capture_logs
from wasmkernel_channels import CHANNELS, Channels, Event, EventStream, format_event

from wasmkernel import Application, Request, Route, WebSocket, hookimpl
from wasmkernel.testing import RunApp, ServeApp, app_from, next_event, running, serving, sse_events, wait_until, websocket_connect


class Live:
    """Routes publishing to and streaming channel "news"."""

    channels: Channels

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        self.channels = app.services.get(CHANNELS, needed_by="live")
        return [
            Route("/publish", self.publish, methods=["POST"]),
            Route("/events", self.events),
            Route("/ws", self.ws, websocket=True),
        ]

    async def publish(self, request: Request) -> dict[str, Any]:
        event = await self.channels.publish("news", await request.json(), event="news")
        return {"id": event.id}

    async def events(self, request: Request) -> EventStream:
        return self.channels.event_stream(request, "news")

    async def ws(self, ws: WebSocket) -> None:
        await self.channels.serve_websocket(ws, "news")


CHAIN: dict[str, dict[str, Any]] = {
    "metrics": {},
    "access-log": {},
    "errors": {},
    "compression": {"config": {"minimum_size": 0}},
    "limits": {"config": {"timeout_seconds": 1.0, "max_body_bytes": 64}},
    "router": {},
    "health": {},
}


def make_app(**channels_config: Any) -> Application:
    config = {"keepalive_seconds": 0.2, "retry_ms": 1500, **channels_config}
    return app_from({**CHAIN, "channels": {"config": config}, "live": {}}, extra_plugins={"live": Live()})


async def wait_for_subscribers(app: Application, count: int) -> None:
    hub = app.services.get(CHANNELS, needed_by="test")
    await wait_until(lambda: hub.subscriber_count == count, what=f"{count} subscribers")


async def test_sse_stream_fields_keepalive_and_the_chain(serve_app: ServeApp) -> None:
    app = make_app()
    with capture_logs() as logs:
        http = (await serve_app(app)).http
        async with http.stream("GET", "/events", headers={"accept-encoding": "gzip"}) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"] == "text/event-stream"
            assert stream.headers["cache-control"] == "no-cache"
            assert "content-encoding" not in stream.headers  # compression leaves event streams alone
            lines = stream.aiter_lines()
            assert await lines.__anext__() == "retry: 1500"
            await wait_for_subscribers(app, 1)
            # Longer than the limits plugin's 1 s request timeout: streams are not cut.
            await trio.sleep(1.2)
            event_id = (await http.post("/publish", json={"n": 1})).json()["id"]
            seen = []
            with trio.fail_after(30):
                while (line := await lines.__anext__()) != 'data: {"n":1}':
                    seen.append(line)
            assert ": keep-alive" in seen and f"id: {event_id}" in seen and "event: news" in seen
        await wait_for_subscribers(app, 0)
        streams = await wait_until(lambda: [line for line in logs if line.get("event") == "request" and line.get("path") == "/events"])
    assert len(streams) == 1 and streams[0]["status"] == 200 and streams[0]["duration_ms"] > 1200


async def test_sse_resumes_after_last_event_id(serve_app: ServeApp) -> None:
    app = make_app()
    served = await serve_app(app)
    ids = [(await served.http.post("/publish", json=n)).json()["id"] for n in range(3)]
    async with served.sse("/events", headers={"last-event-id": ids[0]}) as events:
        assert [(await events.next()).json() for _ in range(2)] == [1, 2]
    async with served.sse("/events", params={"last_event_id": ids[1]}) as events:
        await wait_for_subscribers(app, 1)
        replayed = await events.next()
        assert (replayed.id, replayed.json()) == (ids[2], 2)
        await served.http.post("/publish", json="live")
        event = await events.next()
        assert event.id == ids[2].replace("-3", "-4") and event.json() == "live"
    bad = await served.http.get("/events", headers={"last-event-id": "x" * 300})
    assert bad.status_code == 400


async def test_websocket_fan_out_and_a_reader_that_stops_is_closed_alone(serve_app: ServeApp) -> None:
    app = app_from(
        {**CHAIN, "limits": {"config": {"websocket_queue": 4}}, "channels": {"config": {"queue_size": 4}}, "live": {}},
        extra_plugins={"live": Live()},
    )
    hub = app.services.get(CHANNELS, needed_by="test")
    pad = "x" * 262144  # a few of these fill the socket buffers of a client that stopped reading
    with capture_logs() as logs:
        served = await serve_app(app)
        async with served.websocket("/ws") as fast, served.websocket("/ws", message_queue_size=0, disconnect_timeout=0.5):
            await wait_for_subscribers(app, 2)
            for n in range(400):
                await hub.publish("news", {"n": n, "pad": pad})
                message = await fast.get_message()
                assert isinstance(message, str) and message.startswith(f'{{"n":{n},')
                if hub.subscriber_count == 1:
                    break
            assert hub.subscriber_count == 1, "the stalled reader's subscription never overflowed"
            await hub.publish("news", "after")
            with trio.fail_after(30):
                assert await fast.get_message() == '"after"'
        closes = await wait_until(lambda: [line["close_code"] for line in logs if line.get("event") == "websocket" and line["close_code"] == 1013])
    assert closes == [1013]


async def test_oversized_client_message_closes_only_that_websocket(serve_app: ServeApp) -> None:
    served = await serve_app(make_app())
    async with served.websocket("/ws") as good, served.websocket("/ws") as bad:
        await wait_for_subscribers(served.app, 2)
        await bad.send_message("x" * 1000)
        with pytest.raises(trio_websocket.ConnectionClosed) as closed:
            with trio.fail_after(30):
                await bad.get_message()
        assert closed.value.reason is not None and closed.value.reason.code == 1009
        await served.http.post("/publish", json="still here")
        with trio.fail_after(30):
            assert await good.get_message() == '"still here"'


async def test_a_websocket_is_subscribed_once_its_handshake_completes(run_app: RunApp) -> None:
    """An event published the moment the handshake completes is delivered
    (the subscription is made before the handshake is accepted)."""
    app = make_app()
    hub = app.services.get(CHANNELS, needed_by="test")
    await run_app(app)
    for n in range(20):
        async with websocket_connect(app, "/ws") as ws:
            await hub.publish("news", n)
            with trio.fail_after(30):
                assert await ws.receive_json() == n


async def test_readiness_and_metrics_report_the_broker() -> None:
    app = make_app()
    async with running(app) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["channels"] == {"status": "up", "broker": "memory"}
        await http.post("/publish", json=1)
        metrics = (await http.get("/metrics")).text
    assert 'wasmkernel_channels_broker_up{broker="memory"} 1.0' in metrics
    assert 'wasmkernel_channels_published_total{broker="memory"} 1.0' in metrics


def test_config_is_strict() -> None:
    from wasmkernel import RegistryError

    with pytest.raises(RegistryError, match="overflow"):
        make_app(overflow="block")


def test_event_data_lines_break_at_cr_and_lf_only() -> None:
    """Issue 27: `str.splitlines` also broke at U+2028/U+2029/U+0085, so a post
    holding U+2028 reached every EventSource as two data lines, invalid JSON."""
    data = json.dumps({"text": "a\u2028b\u2029c\x85d"}, ensure_ascii=False)
    framed = format_event(Event("news", "1-0", "news", data)).decode()
    assert framed == f"id: 1-0\nevent: news\ndata: {data}\n\n"
    assert format_event(Event("news", "2-0", "news", "a\r\nb\rc\nd")).decode().count("data: ") == 4


async def test_an_event_with_unicode_line_separators_arrives_whole() -> None:
    app = make_app()
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=5) as http, http.stream("GET", "/events") as stream:
        events = sse_events(stream)
        await wait_for_subscribers(app, 1)
        await http.post("/publish", json={"text": "one\u2028two"})
        assert (await next_event(events)).json() == {"text": "one\u2028two"}
