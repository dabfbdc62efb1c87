"""`wasi:io` (error, poll, streams) over the call's condition variable.

A stream reads from a `Source` or writes to a `Sink`; a `Pipe` is both,
joining the guest's thread to an event-loop task (request and response
bodies). Pollables are really ready or not: `ready()` looks at the state
under the call's lock, `block`/`poll` wait on it (until the call's
deadline).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Any, Protocol

from wasmtime.component import ResourceAny, ResourceHost, Variant

from wasmkernel_components.call import Call, Wakeup, current
from wasmkernel_components.interface import Interface
from wasmkernel_components.table import GuestFault
from wasmkernel_components.values import Err, Ok

#: The most bytes one read returns, and one write may carry.
MAX_CHUNK = 1 << 20

ERROR = "wasi:io/error#error"
POLLABLE = "wasi:io/poll#pollable"
INPUT = "wasi:io/streams#input-stream"
OUTPUT = "wasi:io/streams#output-stream"


class Closed(Exception):
    """The stream has ended (input) or was closed (output)."""


class Failed(Exception):
    """The last operation failed; the message becomes the guest's `error`."""


class Source(Protocol):
    def readable(self) -> bool:
        """Data or the end is there (under the call's lock)."""

    def read(self, size: int) -> bytes:
        """At most `size` bytes without blocking (b"" if none yet); `Closed` at the end, `Failed`."""


class Sink(Protocol):
    def writable(self) -> bool:
        """Room for a write, or closed (under the call's lock)."""

    def capacity(self) -> int:
        """Bytes that may be written now; `Closed`, `Failed`."""

    def write(self, data: bytes) -> None: ...


class IoError:
    def __init__(self, message: str) -> None:
        self.message = message


class Pollable:
    """Ready when `ready()` says so (checked under the call's lock), or at `until` (monotonic seconds)."""

    def __init__(self, ready: Callable[[], bool], until: float | None = None) -> None:
        self._ready = ready
        self.until = until

    def ready(self) -> bool:
        return (self.until is not None and time.monotonic() >= self.until) or self._ready()


class InputStream:
    def __init__(self, source: Source) -> None:
        self.source = source


class OutputStream:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink


class BytesSource:
    """A source over bytes held in memory (stdin of a command, a buffered response)."""

    def __init__(self, data: bytes = b"") -> None:
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int) -> bytes:
        if not self._data:
            raise Closed
        chunk, self._data = self._data[:size], self._data[size:]
        return bytes(chunk)


class Pipe:
    """A bounded byte channel between the guest's thread and an event-loop task.

    Either side may be the writer. The writer `close`s it (or `fail`s it with
    a message); the reader gets the bytes, then `Closed` (or `Failed`).
    """

    def __init__(self, call: Call, limit: int = 256 * 1024) -> None:
        self.call = call
        self.limit = limit
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self.closed = False
        self.discarding = False
        self.error: str | None = None
        #: Wakes the event-loop side when the guest's side changed the pipe.
        self.wakeup = Wakeup(call.token)

    # -- either side, under call.cond ------------------------------------------

    def readable(self) -> bool:
        return self._size > 0 or self.closed

    def writable(self) -> bool:
        return self._size < self.limit or self.closed

    def _take(self, size: int) -> bytes:
        if not self._chunks:
            if self.error is not None:
                raise Failed(self.error)
            if self.closed:
                raise Closed
            return b""
        taken: list[bytes] = []
        room = size
        while self._chunks and room > 0:  # coalesce small writes into one read
            chunk = self._chunks.popleft()
            if len(chunk) > room:
                self._chunks.appendleft(chunk[room:])
                chunk = chunk[:room]
            taken.append(chunk)
            room -= len(chunk)
        data = taken[0] if len(taken) == 1 else b"".join(taken)
        self._size -= len(data)
        return data

    def discard(self) -> None:
        """Nobody will read this pipe (a HEAD response): from now on writes are dropped, never blocked."""
        with self.call.cond:
            self.discarding = True
            self._chunks.clear()
            self._size = 0
            self.call.cond.notify_all()

    def _put(self, data: bytes) -> None:
        if self.closed:
            raise Closed
        if data and not self.discarding:
            self._chunks.append(data)
            self._size += len(data)

    # -- the guest's side (Source and Sink) -----------------------------------

    def read(self, size: int) -> bytes:
        with self.call.cond:
            chunk = self._take(size)
        if chunk:
            self.wakeup.set()
        return chunk

    def capacity(self) -> int:
        with self.call.cond:
            if self.closed:
                raise Closed
            return max(self.limit - self._size, 0)

    def write(self, data: bytes) -> None:
        with self.call.cond:
            self._put(data)
        self.wakeup.set()

    def close(self, error: str | None = None) -> None:
        """The writer is done (any thread); closing twice keeps the first outcome."""
        with self.call.cond:
            if self.closed:
                return
            self.closed = True
            self.error = error
            self.call.cond.notify_all()
        self.wakeup.set()

    # -- the event loop's side -------------------------------------------------

    async def get(self, size: int = MAX_CHUNK) -> bytes | None:
        """The next bytes the guest wrote; None once it closed the pipe (`Failed` if it failed it)."""
        while True:
            event = self.wakeup.arm()
            with self.call.cond:
                try:
                    chunk = self._take(size)
                except Closed:
                    return None
                if chunk:
                    self.call.cond.notify_all()
                    return chunk
            await event.wait()

    async def put(self, data: bytes) -> None:
        """Give the guest `data`, waiting while the pipe is full."""
        while True:
            event = self.wakeup.arm()
            with self.call.cond:
                if self.closed:
                    return
                if self._size < self.limit:
                    self._put(data)
                    self.call.cond.notify_all()
                    return
            await event.wait()


def _length(value: int) -> int:
    return max(0, min(int(value), MAX_CHUNK))


def stream_error(call: Call, exc: Exception) -> Err:
    """`stream-error`: closed, or last-operation-failed with an `error` resource."""
    if isinstance(exc, Closed):
        return Err(Variant("closed"))
    return Err(Variant("last-operation-failed", call.table.new(ERROR, IoError(str(exc)))))


def _input(store: Any, handle: ResourceAny) -> tuple[Call, InputStream]:
    call = current()
    return call, call.table.get(store, handle, INPUT, InputStream)


def _output(store: Any, handle: ResourceAny) -> tuple[Call, OutputStream]:
    call = current()
    return call, call.table.get(store, handle, OUTPUT, OutputStream)


def _read(store: Any, handle: ResourceAny, size: int, blocking: bool) -> Ok | Err:
    call, stream = _input(store, handle)
    try:
        if blocking and size:
            call.wait(stream.source.readable)
        return Ok(stream.source.read(_length(size)))
    except (Closed, Failed) as exc:
        return stream_error(call, exc)


def _skip(store: Any, handle: ResourceAny, size: int, blocking: bool) -> Ok | Err:
    result = _read(store, handle, size, blocking)
    return Ok(len(result.value)) if isinstance(result, Ok) else result


def _check_write(store: Any, handle: ResourceAny) -> Ok | Err:
    call, stream = _output(store, handle)
    try:
        return Ok(stream.sink.capacity())
    except (Closed, Failed) as exc:
        return stream_error(call, exc)


def _write(call: Call, stream: OutputStream, data: bytes, blocking: bool) -> Ok | Err:
    try:
        if len(data) > MAX_CHUNK:
            raise Failed(f"a write carries at most {MAX_CHUNK} bytes")
        view = memoryview(data)
        while view:
            if blocking:
                call.wait(stream.sink.writable)
            room = stream.sink.capacity()
            if not blocking and len(view) > room:
                raise Failed(f"wrote {len(view)} bytes where check-write permitted {room}")
            if room:
                stream.sink.write(bytes(view[:room]))
                view = view[room:]
        return Ok()
    except (Closed, Failed) as exc:
        return stream_error(call, exc)


def _splice(store: Any, out: ResourceAny, src: ResourceAny, size: int, blocking: bool) -> Ok | Err:
    call, output = _output(store, out)
    source = call.table.get(store, src, INPUT, InputStream)
    try:
        if blocking:
            call.wait(source.source.readable)
        room = output.sink.capacity()
        chunk = source.source.read(min(_length(size), room))
    except (Closed, Failed) as exc:
        return stream_error(call, exc)
    result = _write(call, output, chunk, blocking)
    return Ok(len(chunk)) if isinstance(result, Ok) else result


def _subscribe(store: Any, handle: ResourceAny, kind: str) -> ResourceHost:
    call = current()
    if kind == INPUT:
        source = call.table.get(store, handle, INPUT, InputStream).source
        return call.table.new(POLLABLE, Pollable(source.readable))
    sink = call.table.get(store, handle, OUTPUT, OutputStream).sink
    return call.table.new(POLLABLE, Pollable(sink.writable))


def _poll(store: Any, pollables: list[ResourceAny]) -> list[int]:
    call = current()
    if not pollables:
        raise GuestFault("poll called with no pollables")
    items = [call.table.get(store, handle, POLLABLE, Pollable) for handle in pollables]
    ready: list[int] = []

    def any_ready() -> bool:
        ready[:] = [index for index, item in enumerate(items) if item.ready()]
        return bool(ready)

    until = min((item.until for item in items if item.until is not None), default=None)
    while True:
        call.wait(any_ready, until)
        if ready or any_ready():
            return ready


def _block(store: Any, handle: ResourceAny) -> None:
    call = current()
    item = call.table.get(store, handle, POLLABLE, Pollable)
    call.wait(item.ready, item.until)
    while not item.ready():
        call.wait(item.ready, item.until)


def _debug_string(store: Any, handle: ResourceAny) -> str:
    return current().table.get(store, handle, ERROR, IoError).message


def _flush(store: Any, handle: ResourceAny) -> Ok | Err:
    """Writes are handed over at once: flushing only reports a closed or failed stream."""
    call, stream = _output(store, handle)
    try:
        stream.sink.capacity()
        return Ok()
    except (Closed, Failed) as exc:
        return stream_error(call, exc)


INTERFACES = {
    "wasi:io/error": Interface({"error": IoError}, {"[method]error.to-debug-string": _debug_string}),
    "wasi:io/poll": Interface(
        {"pollable": Pollable},
        {
            "[method]pollable.ready": lambda store, handle: current().table.get(store, handle, POLLABLE, Pollable).ready(),
            "[method]pollable.block": _block,
            "poll": _poll,
        },
    ),
    "wasi:io/streams": Interface(
        {"input-stream": InputStream, "output-stream": OutputStream},
        {
            "[method]input-stream.read": lambda store, handle, size: _read(store, handle, size, False),
            "[method]input-stream.blocking-read": lambda store, handle, size: _read(store, handle, size, True),
            "[method]input-stream.skip": lambda store, handle, size: _skip(store, handle, size, False),
            "[method]input-stream.blocking-skip": lambda store, handle, size: _skip(store, handle, size, True),
            "[method]input-stream.subscribe": lambda store, handle: _subscribe(store, handle, INPUT),
            "[method]output-stream.check-write": _check_write,
            "[method]output-stream.write": lambda store, handle, data: _write(*_output(store, handle), data, False),
            "[method]output-stream.blocking-write-and-flush": lambda store, handle, data: _write(*_output(store, handle), data, True),
            "[method]output-stream.flush": _flush,
            "[method]output-stream.blocking-flush": _flush,
            "[method]output-stream.write-zeroes": lambda store, handle, size: _write(*_output(store, handle), bytes(_length(size)), False),
            "[method]output-stream.blocking-write-zeroes-and-flush": lambda store, handle, size: _write(*_output(store, handle), bytes(_length(size)), True),
            "[method]output-stream.splice": lambda store, out, src, size: _splice(store, out, src, size, False),
            "[method]output-stream.blocking-splice": lambda store, out, src, size: _splice(store, out, src, size, True),
            "[method]output-stream.subscribe": lambda store, handle: _subscribe(store, handle, OUTPUT),
        },
    ),
}
