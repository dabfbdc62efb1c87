"""Serving an application in-process under hypercorn's trio server (real TCP,
real streaming), and reading Server-Sent Events from it: for tests of streams
that httpx's in-process transport would buffer, and of several instances."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, cast

import attrs
import httpx
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from hypercorn.typing import Framework

from tests.conftest import free_port
from wasmkernel import Application


@asynccontextmanager
async def serving(app: Application) -> AsyncIterator[str]:
    """Serve `app` (lifespan included) on a free loopback port; yield its base URL."""
    config = Config()
    port = free_port()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 0.5
    config.websocket_ping_interval = None
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve, cast(Framework, app), config, shutdown_trigger=stop.wait))
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            stop.set()


@attrs.frozen
class ServerEvent:
    """One event of an event stream (comments are not events)."""

    id: str | None
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


async def event_stream_lines(response: httpx.Response) -> AsyncIterator[str]:
    """The lines of an event stream, broken at CR, LF or CRLF only, as the
    format says (httpx's `aiter_lines` also breaks at U+2028, U+2029, U+0085...)."""
    pending = ""
    async for text in response.aiter_text():
        pending += text
        *lines, pending = re.split(r"\r\n|\r(?!$)|\n", pending)
        for line in lines:
            yield line


async def sse_events(response: httpx.Response) -> AsyncIterator[ServerEvent]:
    """The events of a streaming ``text/event-stream`` response."""
    fields: dict[str, list[str]] = {}
    async for line in event_stream_lines(response):
        if line == "":
            if "data" in fields:
                ids = fields.get("id")
                yield ServerEvent(ids[-1] if ids else None, fields.get("event", ["message"])[-1], "\n".join(fields["data"]))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields.setdefault(name, []).append(value.removeprefix(" "))


async def next_event(events: AsyncIterator[ServerEvent], timeout: float = 5.0) -> ServerEvent:
    with trio.fail_after(timeout):
        return await events.__anext__()
