"""Streamed responses (Server-Sent Events, long downloads) per client and in
total, like WebSocket connections (issue 22: one client held 1,437 SSE
streams). Served by hypercorn over real TCP: in-process transports buffer
whole responses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import trio

from tests.realtime.serving import serving
from wasmkernel import Application, Request, Route, StreamingResponse, hookimpl
from wasmkernel.testing import app_from


class Endless(StreamingResponse):
    """A stream holding something until it is sent (as an SSE stream holds
    its channel subscription), ending when the client leaves."""

    def __init__(self, request: Request, held: set[int]) -> None:
        super().__init__(self._ticks(), media_type="text/event-stream")
        self.request, self.held = request, held
        held.add(id(self))

    async def _ticks(self) -> AsyncIterator[bytes]:
        while True:
            yield b": tick\n\n"
            await trio.sleep(0.05)

    async def send(self, send: Callable[[Any], Awaitable[None]], *, include_body: bool = True) -> int:
        sent = 0
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch, nursery.cancel_scope)
                sent = await super().send(send, include_body=include_body)
                nursery.cancel_scope.cancel()
        finally:
            self.held.discard(id(self))
        return sent

    async def _watch(self, scope: trio.CancelScope) -> None:
        while (await self.request.receive())["type"] != "http.disconnect":
            pass
        scope.cancel()


class Streams:
    def __init__(self) -> None:
        self.held: set[int] = set()

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        async def events(request: Request) -> Endless:
            return Endless(request, self.held)

        async def plain(request: Request) -> dict[str, bool]:
            return {"ok": True}

        return [Route("/events", events, methods=["GET", "HEAD"]), Route("/plain", plain)]


def app(streams: Streams, **limits: int) -> Application:
    return app_from({"errors": {}, "limits": {"config": limits}, "router": {}, "s": {}}, extra_plugins={"s": streams})


async def open_stream(stack: AsyncExitStack, base: str, address: str = "127.0.0.1") -> int:
    """Open one stream on its own connection from `address`; its status (kept open if 200)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=base, transport=transport, timeout=10))
    response = await stack.enter_async_context(client.stream("GET", "/events"))
    if response.status_code == 200:
        chunks = response.aiter_raw()
        stack.callback(lambda: chunks)  # keep it: dropping it would end the stream
        await chunks.__anext__()
    return response.status_code


async def eventually(condition: Callable[[], Awaitable[bool]]) -> bool:
    with trio.move_on_after(10):
        while not await condition():
            await trio.sleep(0.05)
        return True
    return False


async def test_streams_per_client_are_limited_and_released() -> None:
    streams = Streams()
    async with serving(app(streams, streams_per_client=3)) as base:
        async with AsyncExitStack() as first:
            assert [await open_stream(first, base) for _ in range(3)] == [200, 200, 200]
            async with AsyncExitStack() as refused:
                assert await open_stream(refused, base) == 429
                assert await open_stream(refused, base, address="127.0.0.2") == 200  # another client
            async with httpx.AsyncClient(base_url=base) as client:
                assert (await client.get("/plain")).status_code == 200  # other requests are not streams
        # the client's streams are closed: room again
        async with AsyncExitStack() as again:

            async def room() -> bool:
                async with AsyncExitStack() as probe:
                    return await open_stream(probe, base) == 200

            assert await eventually(room)
            async with httpx.AsyncClient(base_url=base) as client:
                assert [(await client.head("/events")).status_code for _ in range(5)] == [200] * 5  # nothing held after
            assert [await open_stream(again, base) for _ in range(3)] == [200, 200, 200]
        assert await eventually(lambda: _none_held(streams))  # refused streams released what they held too


async def _none_held(streams: Streams) -> bool:
    await trio.lowlevel.checkpoint()
    return not streams.held


async def test_streams_in_total_are_limited() -> None:
    async with serving(app(Streams(), streams_total=2, streams_per_client=0)) as base, AsyncExitStack() as stack:
        statuses = [await open_stream(stack, base, address=f"127.0.0.{n}") for n in (1, 2, 3)]
        assert statuses == [200, 200, 429]
