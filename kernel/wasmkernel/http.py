"""The HTTP request handed to middleware and endpoints."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import trio

from wasmkernel.connection import Connection
from wasmkernel.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from wasmkernel.jsonio import off_loop, parse_json

if TYPE_CHECKING:  # python-multipart is imported when a form is read
    from wasmkernel.forms import FormData, FormLimits, UploadFile

_UNSET: Any = object()


class ClientDisconnected(Exception):
    """The client went away before its answer (while the body was read, or
    during `Request.cancelled_on_disconnect`)."""


@attrs.define(slots=True, eq=False)
class Request(Connection):
    """An HTTP request. The body is read by the first `body()`, `json()` or
    `form()`, at most `max_body_size` bytes (413 beyond). `nursery` (set by
    the kernel: the application's) runs the request's disconnect watcher."""

    nursery: trio.Nursery | None = attrs.field(default=None, repr=False)
    _body: bytes | None = attrs.field(default=None, repr=False)
    _streamed: bool = attrs.field(default=False, repr=False)
    _json: Any = attrs.field(default=_UNSET, repr=False)
    _form: FormData | None = attrs.field(default=None, repr=False)
    #: Created on first use (most requests need none of them).
    _uploads: list[UploadFile] | None = attrs.field(default=None, repr=False)
    _gone: bool = attrs.field(default=False, repr=False)
    _watcher: trio.CancelScope | None = attrs.field(default=None, repr=False)
    _blocks: set[trio.CancelScope] | None = attrs.field(default=None, repr=False)

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    @property
    def content_type(self) -> str:
        """The media type of the body, lower-case, without parameters."""
        return (self.headers.get("content-type") or "").split(";")[0].strip().lower()

    async def stream(self) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive (once; `body()` keeps them):
        413 past `max_body_size`, `ClientDisconnected` if the client leaves."""
        if self._body is not None:
            yield self._body
            return
        if self._streamed:
            raise RuntimeError("the request body was already streamed")
        self._streamed = True
        declared = self.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_size:
            raise PayloadTooLarge(f"Request body exceeds {self.max_body_size} bytes")
        size, more = 0, True
        while more:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self._gone = True
                raise ClientDisconnected()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_size:
                raise PayloadTooLarge(f"Request body exceeds {self.max_body_size} bytes")
            more = message.get("more_body", False)
            if chunk:
                yield chunk

    async def body(self) -> bytes:
        """The whole body; 413 if it is (or announces to be) over `max_body_size`."""
        if self._body is None:
            self._body = b"".join([chunk async for chunk in self.stream()])
        return self._body

    async def text(self) -> str:
        try:
            return (await self.body()).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"Request body is not valid UTF-8: {exc.reason}") from None

    async def json(self) -> Any:
        """The body parsed as JSON (see `wasmkernel.jsonio`: a large body is
        decoded in a worker thread); 400 with the parser's message if malformed."""
        if self._json is _UNSET:
            raw = await self.body()
            self._json = await off_loop(len(raw), functools.partial(parse_json, raw))
        return self._json

    async def form(self, limits: FormLimits | None = None) -> FormData:
        """The urlencoded or multipart body as (name, value) pairs in body
        order, a file's value an `UploadFile` (see `wasmkernel.forms`;
        `limits` is a `FormLimits`); 415 for another content type."""
        if self._form is None:
            from wasmkernel import forms  # python-multipart only when a form is read

            limits = limits or forms.FormLimits()
            if self.content_type == "application/x-www-form-urlencoded":
                self._form = forms.parse_urlencoded(await self.body(), limits)
            elif self.content_type == "multipart/form-data":
                self._uploads = []
                self._form = await forms.parse_multipart(self.headers.get("content-type") or "", self.stream(), limits, self._uploads)
            else:
                raise UnsupportedMediaType(f"Expected a form body ({', '.join(forms.FORM_TYPES)}), got {self.content_type or 'none'}")
        return self._form

    async def is_disconnected(self) -> bool:
        """Whether the client has gone (its connection closed, its HTTP/2
        stream reset). Reads the body first (413 as `body()`); the first call
        starts the request's one watcher, which every later call and
        `cancelled_on_disconnect` share and which ends with the request."""
        if not self._gone and self._watcher is None:
            try:
                if not self._streamed:
                    await self.body()
            except ClientDisconnected:
                return True
            if self.nursery is None:
                raise RuntimeError("is_disconnected() needs the application's nursery: start the application (lifespan) first")
            self._watcher = trio.CancelScope()
            self.nursery.start_soon(self._watch, self._watcher)
        await trio.lowlevel.checkpoint()
        return self._gone

    async def _watch(self, scope: trio.CancelScope) -> None:
        with scope:
            while (await self.receive())["type"] != "http.disconnect":
                pass
            self._gone = True
            for block in self._blocks or ():
                block.cancel()

    @asynccontextmanager
    async def cancelled_on_disconnect(self) -> AsyncIterator[None]:
        """Run the block until it ends or the client goes away: then it is
        cancelled and `ClientDisconnected` raised (for work that is useless
        once nobody waits for it). No task of its own (see `is_disconnected`)."""
        if await self.is_disconnected():
            raise ClientDisconnected()
        blocks = self._blocks = self._blocks or set()
        with trio.CancelScope() as block:
            blocks.add(block)
            try:
                yield
            finally:
                blocks.discard(block)
        if block.cancelled_caught and self._gone:
            raise ClientDisconnected()

    def close(self) -> None:
        """Called by the kernel when the request is over: stops the watcher
        and closes (deletes) uploaded files."""
        if self._watcher is not None:
            self._watcher.cancel()
        for upload in self._uploads or ():
            upload.file.close()
