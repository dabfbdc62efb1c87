"""Reading Server-Sent Events the way a browser's ``EventSource`` does (the
WHATWG HTML standard, "Parsing an event stream"): UTF-8 with an optional BOM,
lines ending at CRLF, LF or CR only — not at U+2028, U+0085 or the other
breaks `str.splitlines()` (and httpx's `aiter_lines`) also split at."""

from __future__ import annotations

import codecs
import collections
import json
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import attrs
import trio

from wasmkernel.testing.waiting import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    import httpx

_LINE_END = re.compile("\r\n|\r|\n")


@attrs.frozen
class ServerEvent:
    """One dispatched event: `id` is the stream's last event ID at that point
    (None while none was set), `event` its type ("message" by default)."""

    id: str | None
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


@attrs.define
class EventStreamParser:
    """Incremental, sans-IO: `feed` bytes as they arrive, get the events they
    complete. `retry` is the last valid reconnection time sent (ms), `comments`
    every comment line (without the colon and one leading space)."""

    retry: int | None = None
    comments: list[str] = attrs.field(factory=list)
    _decoder: codecs.IncrementalDecoder = attrs.field(factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace"))
    _started: bool = False
    _rest: str = ""
    _after_cr: bool = False
    _data: list[str] = attrs.field(factory=list)
    _event: str = ""
    _last_id: str = ""

    def feed(self, chunk: bytes) -> list[ServerEvent]:
        text = self._decoder.decode(chunk)
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._after_cr and text.startswith("\n"):
            text = text[1:]  # the LF of a CRLF split between two chunks
            self._after_cr = False
        if text:
            self._after_cr = text.endswith("\r")
        *lines, self._rest = _LINE_END.split(self._rest + text)
        return [event for line in lines if (event := self._line(line)) is not None]

    def _line(self, line: str) -> ServerEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            self.comments.append(line[1:].removeprefix(" "))
            return None
        name, colon, value = line.partition(":")
        value = value.removeprefix(" ") if colon else ""
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> ServerEvent | None:
        data, event, self._data, self._event = self._data, self._event, [], ""
        if not data:
            return None
        return ServerEvent(self._last_id or None, event or "message", "\n".join(data))


class EventStream:
    """The events of a streaming ``text/event-stream`` httpx response, as an
    async iterator; `next()` waits for one with a timeout."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.parser = EventStreamParser()
        self._chunks = response.aiter_bytes()
        self._ready: collections.deque[ServerEvent] = collections.deque()

    @property
    def retry(self) -> int | None:
        return self.parser.retry

    @property
    def comments(self) -> list[str]:
        return self.parser.comments

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> ServerEvent:
        while not self._ready:
            self._ready.extend(self.parser.feed(await self._chunks.__anext__()))
        return self._ready.popleft()

    async def next(self, timeout: float = DEFAULT_TIMEOUT) -> ServerEvent:
        """The next event; `trio.TooSlowError` after `timeout` seconds (a hang guard)."""
        with trio.fail_after(timeout):
            return await self.__anext__()


def sse_events(response: httpx.Response) -> EventStream:
    """The events of a streaming ``text/event-stream`` response."""
    return EventStream(response)


async def next_event(events: AsyncIterator[ServerEvent], timeout: float = DEFAULT_TIMEOUT) -> ServerEvent:
    """The next event of `events`; `trio.TooSlowError` after `timeout` seconds."""
    with trio.fail_after(timeout):
        return await events.__anext__()
