"""The HTTP request handed to middleware and endpoints."""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import trio

from wasmkernel.connection import Connection
from wasmkernel.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

if TYPE_CHECKING:  # python-multipart is imported when a form is read
    from wasmkernel.forms import FormData, FormLimits, UploadFile

#: Deepest nesting of arrays and objects a JSON body may have (400 beyond):
#: deeper ones would exhaust the stack of the parser or of whoever walks them.
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = str.maketrans({c: None for c in map(chr, range(128)) if c not in "[]{}"})
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_UNSET: Any = object()


class ClientDisconnected(Exception):
    """The client went away before its answer (while the body was read, or
    during `Request.cancelled_on_disconnect`)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def json_too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `text` nests arrays/objects deeper than `limit` (brackets
    inside strings do not count); linear time, no recursion."""
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _JSON_STRING.sub("", text).translate(_BRACKETS)
    return max(itertools.accumulate(_DEPTH_STEP.get(c, 0) for c in brackets), default=0) > limit


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
        """The body parsed as JSON; 400 with the parser's message if malformed."""
        if self._json is not _UNSET:
            return self._json
        text = await self.text()
        if json_too_deep(text):
            raise BadRequest(f"Malformed JSON body: nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            self._json = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"Malformed JSON body: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
        except (ValueError, RecursionError) as exc:
            raise BadRequest(f"Malformed JSON body: {str(exc)[:200]}") from None
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
