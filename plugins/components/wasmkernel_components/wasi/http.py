"""`wasi:http/types` and `wasi:http/outgoing-handler`, implemented in the host.

wasmtime-py offers no way to create an `incoming-request` or a
`response-outparam`, so the whole interface lives here: header fields with
the rules of every module response (an RFC 9110 token name, a value without
control characters, no connection-specific or pseudo header: refused with
`header-error`), the request body streamed in and the response body
streamed out through `Pipe`s, trailers, and outgoing requests performed by
the wasm host's outbound client (allow-listed origins, its limits).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from typing import Any, TypeVar

import attrs
import structlog
from wasmtime.component import ResourceAny, ResourceHost, Variant

from wasmkernel import HOP_BY_HOP, header_problem
from wasmkernel_components.call import Call, Wakeup, current
from wasmkernel_components.interface import Interface
from wasmkernel_components.table import GuestFault, Table
from wasmkernel_components.values import Err, Ok, Some
from wasmkernel_components.wasi.io import INPUT, OUTPUT, POLLABLE, BytesSource, Closed, Failed, InputStream, OutputStream, Pipe, Pollable, Sink, Source

log = structlog.get_logger("wasmkernel.components")

FIELDS = "wasi:http/types#fields"
INCOMING_REQUEST = "wasi:http/types#incoming-request"
OUTGOING_REQUEST = "wasi:http/types#outgoing-request"
REQUEST_OPTIONS = "wasi:http/types#request-options"
RESPONSE_OUTPARAM = "wasi:http/types#response-outparam"
INCOMING_RESPONSE = "wasi:http/types#incoming-response"
INCOMING_BODY = "wasi:http/types#incoming-body"
FUTURE_TRAILERS = "wasi:http/types#future-trailers"
OUTGOING_RESPONSE = "wasi:http/types#outgoing-response"
OUTGOING_BODY = "wasi:http/types#outgoing-body"
FUTURE_RESPONSE = "wasi:http/types#future-incoming-response"

#: Limits on one set of header fields a component builds.
MAX_FIELDS = 256
MAX_FIELDS_BYTES = 64 * 1024
#: The most an outgoing request's body may hold (it is sent whole).
MAX_OUTGOING_BODY = 8 * 1024 * 1024
#: Outgoing requests one call may have in flight at once.
MAX_IN_FLIGHT = 8
METHODS = ("get", "head", "post", "put", "delete", "connect", "options", "trace", "patch")
#: An outgoing request's authority: host (a name, IPv4 or [IPv6]) and an optional port; no userinfo.
_AUTHORITY = re.compile(r"(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252}))(?::(?P<port>[0-9]{1,5}))?")
#: An outgoing request's path and query: from '/', printable ASCII, no fragment.
_PATH = re.compile(r"/[\x21-\x22\x24-\x7e]{0,8191}")
_U32 = struct.Struct("<I")
T = TypeVar("T")


def connection_specific(name: str) -> bool:
    """Whether `name` speaks for one connection (hop-by-hop): never forwarded by the host, in or out."""
    lower = name.lower()
    return lower in HOP_BY_HOP or lower.startswith("proxy-")


def field_problem(name: str, value: bytes) -> tuple[str, str] | None:
    """(header-error case, why) if `name: value` may not be set, else None."""
    problem = header_problem(name, value.decode("latin-1"))
    if problem is None:
        return None
    return ("forbidden" if "connection-specific" in problem else "invalid-syntax", problem)


class Fields:
    """Header or trailer fields; names compared case-insensitively, kept as given."""

    def __init__(self, entries: Iterable[tuple[str, bytes]] = (), mutable: bool = True) -> None:
        self.entries: list[tuple[str, bytes]] = list(entries)
        self.mutable = mutable
        #: Bytes charged to the call's table for these fields (built by the guest).
        self.charged = 0

    def _size(self) -> int:
        return sum(len(name) + len(value) for name, value in self.entries)

    def _account(self, size: int) -> bool:
        """Charge (or release) the call's table for holding `size` bytes from now on; False if over its budget."""
        delta = size - self.charged
        if delta > 0:
            try:
                current().table.charge(delta)
            except GuestFault:
                return False
        elif delta < 0:
            current().table.release(-delta)
        self.charged = size
        return True

    def _check(self, name: str, values: Iterable[bytes], size: int, count: int) -> Err | None:
        """Whether `values` may be set under `name`, leaving `count` entries of `size` bytes (charged if so)."""
        if not self.mutable:
            return Err(Variant("immutable"))
        for value in values:
            problem = field_problem(name, value)
            if problem is not None:
                return Err(Variant(problem[0]))
        if count > MAX_FIELDS or size > MAX_FIELDS_BYTES or not self._account(size):
            return Err(Variant("forbidden"))
        return None

    def dropped(self) -> None:
        current().table.release(self.charged)
        self.charged = 0

    def get(self, name: str) -> list[bytes]:
        lower = name.lower()
        return [value for key, value in self.entries if key.lower() == lower]

    def set(self, name: str, values: list[bytes]) -> Ok | Err:
        lower = name.lower()
        kept = [(key, value) for key, value in self.entries if key.lower() != lower]
        size = sum(len(key) + len(value) for key, value in kept) + sum(len(name) + len(value) for value in values)
        error = self._check(name, values, size, len(kept) + len(values))
        if error is not None:
            return error
        self.entries = kept + [(name, value) for value in values]
        return Ok()

    def append(self, name: str, value: bytes) -> Ok | Err:
        error = self._check(name, [value], self._size() + len(name) + len(value), len(self.entries) + 1)
        if error is not None:
            return error
        self.entries.append((name, value))
        return Ok()

    def delete(self, name: str) -> Ok | Err:
        if not self.mutable:
            return Err(Variant("immutable"))
        lower = name.lower()
        self.entries = [(key, value) for key, value in self.entries if key.lower() != lower]
        self._account(self._size())
        return Ok()

    def sendable(self) -> list[tuple[str, str]]:
        return [(name.lower(), value.decode("latin-1")) for name, value in self.entries]


def _http_error_code(store: Any, handle: ResourceAny) -> None:
    """No stream error here carries an HTTP error code."""
    current().table.get(store, handle, "wasi:io/error#error", object)


def _from_list(store: Any, entries: list[tuple[str, bytes]]) -> Ok | Err:
    fields = Fields()
    for name, value in entries:
        error = fields.append(name, value)
        if isinstance(error, Err):
            return error
    return Ok(current().table.new(FIELDS, fields))


@attrs.define(eq=False)
class IncomingBody:
    source: Source
    streamed: bool = False


class FutureTrailers:
    """Requests carry no trailers here (ASGI does not pass them on): ready at once with none."""

    taken = False


@attrs.define(eq=False)
class IncomingRequest:
    method: str
    path_with_query: str
    scheme: str
    authority: str
    headers: Fields
    body: IncomingBody | None


@attrs.define(eq=False)
class IncomingResponse:
    status: int
    headers: Fields
    body: IncomingBody | None


class LimitedSink:
    """The response body: a `Pipe` to the event loop, with a declared Content-Length enforced."""

    def __init__(self, pipe: Pipe, length: int | None) -> None:
        self.pipe = pipe
        self.length = length
        self.written = 0

    def writable(self) -> bool:
        return self.pipe.writable()

    def capacity(self) -> int:
        room = self.pipe.capacity()
        return room if self.length is None else min(room, max(self.length - self.written, 0))

    def write(self, data: bytes) -> None:
        if self.length is not None and self.written + len(data) > self.length:
            raise Failed(f"the body would exceed its Content-Length of {self.length}")
        self.written += len(data)
        self.pipe.write(data)


class BufferSink:
    """An outgoing request's body, sent whole when finished (`done` wakes the sender);
    its bytes are charged to the call's table until the request is over."""

    def __init__(self, done: Wakeup, table: Table, limit: int = MAX_OUTGOING_BODY) -> None:
        self.data = bytearray()
        self.limit = limit
        self.closed = False
        self.done = done
        self.table = table

    def release(self) -> None:
        self.table.release(len(self.data))
        self.data = bytearray()

    def close(self, failed: bool = False) -> None:
        with current().cond:
            self.closed = True
            if failed:
                self.limit = -1
        self.done.set()

    def writable(self) -> bool:
        return True

    def capacity(self) -> int:
        if self.closed:
            raise Closed
        return max(self.limit - len(self.data), 0) or 1

    def write(self, data: bytes) -> None:
        if len(self.data) + len(data) > self.limit:
            raise Failed(f"an outgoing request body holds at most {self.limit} bytes")
        try:
            self.table.charge(len(data))
        except GuestFault as exc:
            raise Failed(str(exc)) from None
        self.data += data


@attrs.define(eq=False)
class OutgoingBody:
    sink: Sink
    written: bool = False
    finished: bool = False

    def dropped(self) -> None:
        """The guest dropped its handle (finish consumes it first, so this is a drop without finish)."""
        dropped_body(self)


@attrs.define(eq=False)
class OutgoingResponse:
    headers: Fields
    status: int = 200
    body: OutgoingBody | None = None


@attrs.define(eq=False)
class OutgoingRequest:
    headers: Fields
    method: str = "GET"
    scheme: str | None = None
    authority: str | None = None
    path_with_query: str | None = None
    body: OutgoingBody | None = None


@attrs.define(eq=False)
class RequestOptions:
    connect_timeout: int | None = None
    first_byte_timeout: int | None = None
    between_bytes_timeout: int | None = None


@attrs.define(eq=False)
class FutureResponse:
    value: Ok | Err | None = None
    taken: bool = False

    def ready(self) -> bool:
        return self.value is not None


class ResponseOutparam:
    """Where the guest puts its response (once)."""

    used = False


@attrs.define(eq=False)
class Exchange:
    """One incoming request's exchange: what `handle` gets and what it answered."""

    call: Call
    request: IncomingRequest
    #: The response body's pipe to the event loop.
    body: Pipe
    head: Wakeup
    status: int | None = None
    headers: list[tuple[str, str]] = attrs.field(factory=list)
    #: Why the component's answer cannot be sent (502), or the error-code it answered with (500).
    problem: str | None = None
    trailers: list[tuple[str, str]] = attrs.field(factory=list)
    #: The wasm host's `HostAPI` (outbound HTTP, key-value), the component's name there.
    services: Any = None
    #: The outgoing-response whose body writes to `body` (the first to ask for one).
    body_owner: Any = None
    #: Outgoing requests handed to the host and not yet answered.
    in_flight: int = 0


def exchange() -> Exchange:
    found = current().state.get("wasi:http")
    if not isinstance(found, Exchange):
        raise GuestFault("no incoming request in this call")
    return found


def _method(value: Any) -> str:
    tag = value.tag if isinstance(value, Variant) else str(value)
    if tag == "other":
        name = str(value.payload)
        if not name.isascii() or not name.isalpha() or len(name) > 32:
            raise GuestFault(f"invalid method {name[:40]!r}")
        return name.upper()
    return tag.upper()


def _method_value(method: str) -> Variant:
    return Variant(method.lower()) if method.lower() in METHODS else Variant("other", method)


def _scheme_value(scheme: str) -> Variant:
    return Variant({"http": "HTTP", "https": "HTTPS"}.get(scheme, "other"), None if scheme in ("http", "https") else scheme)


def _scheme(value: Any) -> str | None:
    """http or https (another scheme is refused: the host speaks HTTP only)."""
    if value is None:
        return None
    tag = value.tag if isinstance(value, Variant) else str(value)
    scheme = str(value.payload).lower() if tag == "other" else tag.lower()
    if scheme not in ("http", "https"):
        raise GuestFault(f"scheme {scheme[:20]!r} is not supported")
    return scheme


def _authority(value: str | None) -> str | None:
    if value is None:
        return None
    match = _AUTHORITY.fullmatch(value)
    if match is None or int(match.group("port") or 0) > 65535:
        raise GuestFault("not an authority (host[:port], a port up to 65535)")
    return value


def outgoing_url(scheme: str | None, authority: str, path_with_query: str | None) -> str:
    """The URL of an outgoing request whose parts passed `_scheme`, `_authority` and `_path`
    (https and "/" when unset): it parses back into exactly these parts."""
    return f"{scheme or 'https'}://{authority}{path_with_query or '/'}"


def _path(value: str | None) -> str | None:
    if value is not None and not _PATH.fullmatch(value):
        raise GuestFault("not a path-with-query (from '/', printable ASCII, no fragment)")
    return value


def _get(store: Any, handle: ResourceAny, kind: str, cls: type[T]) -> T:
    return current().table.get(store, handle, kind, cls)


def _new(kind: str, item: Any) -> ResourceHost:
    return current().table.new(kind, item)


def _child_fields(fields: Fields) -> ResourceHost:
    """A handle to a message's headers: the same fields, immutable from now on (as the spec says)."""
    return _new(FIELDS, Fields(fields.entries, mutable=False))


def _consume(store: Any, handle: ResourceAny, kind: str, cls: type[Any]) -> Ok | Err:
    message = _get(store, handle, kind, cls)
    if message.body is None:
        return Err()
    body, message.body = message.body, None
    return Ok(_new(INCOMING_BODY, body))


def _body_stream(store: Any, handle: ResourceAny) -> Ok | Err:
    body = _get(store, handle, INCOMING_BODY, IncomingBody)
    if body.streamed:
        return Err()
    body.streamed = True
    return Ok(_new(INPUT, InputStream(body.source)))


def _body_finish(store: Any, handle: ResourceAny) -> ResourceHost:
    current().table.take(store, handle, INCOMING_BODY, IncomingBody)
    return _new(FUTURE_TRAILERS, FutureTrailers())


def _trailers_get(store: Any, handle: ResourceAny) -> Any:
    future = _get(store, handle, FUTURE_TRAILERS, FutureTrailers)
    if future.taken:
        return Some(Err())
    future.taken = True
    return Some(Ok(Ok(None)))


def _outgoing_body(store: Any, handle: ResourceAny, kind: str, cls: type[Any]) -> Ok | Err:
    message = _get(store, handle, kind, cls)
    if message.body is not None:
        return Err()
    if isinstance(message, OutgoingResponse):
        state = exchange()
        if state.body_owner is not None:  # one response body per request: the pipe is the client's
            return Err()
        state.body_owner = message
        declared = [value for name, value in message.headers.entries if name.lower() == "content-length"]
        length = int(declared[0]) if len(declared) == 1 and declared[0].isdigit() else None
        message.body = OutgoingBody(LimitedSink(state.body, length))
    else:
        call = current()
        message.body = OutgoingBody(BufferSink(Wakeup(call.token), call.table))
    return Ok(_new(OUTGOING_BODY, message.body))


def _body_write(store: Any, handle: ResourceAny) -> Ok | Err:
    body = _get(store, handle, OUTGOING_BODY, OutgoingBody)
    if body.written:
        return Err()
    body.written = True
    return Ok(_new(OUTPUT, OutputStream(body.sink)))


def _body_finish_out(store: Any, handle: ResourceAny, trailers: ResourceAny | None) -> Ok | Err:
    call = current()
    body = call.table.take(store, handle, OUTGOING_BODY, OutgoingBody)
    fields = call.table.take(store, trailers, FIELDS, Fields) if trailers is not None else None
    body.finished = True
    if isinstance(body.sink, LimitedSink):
        sink = body.sink
        if sink.length is not None and sink.written != sink.length:
            sink.pipe.close(f"the body has {sink.written} bytes, its Content-Length says {sink.length}")
            return Err(Variant("HTTP-response-body-size", Some(sink.written)))
        if fields is not None:
            exchange().trailers = fields.sendable()
        sink.pipe.close()
    elif isinstance(body.sink, BufferSink):
        body.sink.close()
    return Ok()


def dropped_body(body: OutgoingBody) -> None:
    """The guest dropped an outgoing body without finishing it: the message is cut off."""
    if body.finished:
        return
    if isinstance(body.sink, LimitedSink):
        body.sink.pipe.close("the component dropped the response body without finishing it")
    elif isinstance(body.sink, BufferSink):
        body.sink.close(failed=True)


def _set_response(store: Any, param: ResourceAny, response: Any) -> None:
    call = current()
    outparam = call.table.take(store, param, RESPONSE_OUTPARAM, ResponseOutparam)
    if outparam.used:
        raise GuestFault("response-outparam.set called twice")
    outparam.used = True
    state = exchange()
    if isinstance(response, ResourceAny):
        answer = call.table.take(store, response, OUTGOING_RESPONSE, OutgoingResponse)
        state.status, state.headers = answer.status, answer.headers.sendable()
        if answer.body is None:  # no body resource taken: an empty body
            state.body.close()
    else:
        state.problem = f"the component answered with error-code {getattr(response, 'tag', response)}"
        state.body.close()
    state.head.set()


def _set_status(store: Any, handle: ResourceAny, status: int) -> Ok | Err:
    response = _get(store, handle, OUTGOING_RESPONSE, OutgoingResponse)
    if not 100 <= status <= 599:
        return Err()
    response.status = status
    return Ok()


def _setter(kind: str, cls: type[Any], attribute: str, parse: Any = lambda value: value) -> Any:
    def set_value(store: Any, handle: ResourceAny, value: Any) -> Ok | Err:
        target = _get(store, handle, kind, cls)
        try:
            setattr(target, attribute, parse(value))
        except GuestFault:
            return Err()
        return Ok()

    return set_value


def _some(value: Any) -> Some | None:
    return None if value is None else Some(value)


def _request_field(store: Any, handle: ResourceAny, attribute: str) -> Any:
    return getattr(_get(store, handle, INCOMING_REQUEST, IncomingRequest), attribute)


def _fields_get(store: Any, handle: ResourceAny) -> Fields:
    return _get(store, handle, FIELDS, Fields)


def _clone(store: Any, handle: ResourceAny) -> ResourceHost:
    """A mutable copy (of a message's fields too: they hold no connection-specific field)."""
    copy = Fields(_fields_get(store, handle).entries)
    if not copy._account(copy._size()):
        raise GuestFault(f"the component makes the host hold more than {Table.BYTES_LIMIT} bytes")
    return _new(FIELDS, copy)


def _options_setter(attribute: str) -> Any:
    return _setter(REQUEST_OPTIONS, RequestOptions, attribute)


def _options_getter(attribute: str) -> Any:
    return lambda store, handle: _some(getattr(_get(store, handle, REQUEST_OPTIONS, RequestOptions), attribute))


def _trailers_subscribe(store: Any, handle: ResourceAny) -> ResourceHost:
    _get(store, handle, FUTURE_TRAILERS, FutureTrailers)
    return _new(POLLABLE, Pollable(lambda: True))


def _new_response(store: Any, headers: ResourceAny) -> ResourceHost:
    return _new(OUTGOING_RESPONSE, OutgoingResponse(current().table.take(store, headers, FIELDS, Fields)))


def _future_subscribe(store: Any, handle: ResourceAny) -> ResourceHost:
    return _new(POLLABLE, Pollable(_get(store, handle, FUTURE_RESPONSE, FutureResponse).ready))


def _future_get(store: Any, handle: ResourceAny) -> Any:
    future = _get(store, handle, FUTURE_RESPONSE, FutureResponse)
    if future.value is None:
        return None
    if future.taken:
        return Some(Err())
    future.taken = True
    value = future.value
    if isinstance(value, Ok):
        return Some(Ok(Ok(_new(INCOMING_RESPONSE, value.value))))
    return Some(Ok(value))


TYPES = Interface(
    {
        "fields": Fields,
        "incoming-request": IncomingRequest,
        "outgoing-request": OutgoingRequest,
        "request-options": RequestOptions,
        "response-outparam": ResponseOutparam,
        "incoming-response": IncomingResponse,
        "incoming-body": IncomingBody,
        "future-trailers": FutureTrailers,
        "outgoing-response": OutgoingResponse,
        "outgoing-body": OutgoingBody,
        "future-incoming-response": FutureResponse,
    },
    {
        "http-error-code": _http_error_code,
        "[constructor]fields": lambda store: _new(FIELDS, Fields()),
        "[static]fields.from-list": _from_list,
        "[method]fields.get": lambda store, handle, name: _fields_get(store, handle).get(name),
        "[method]fields.has": lambda store, handle, name: bool(_fields_get(store, handle).get(name)),
        "[method]fields.set": lambda store, handle, name, values: _fields_get(store, handle).set(name, values),
        "[method]fields.delete": lambda store, handle, name: _fields_get(store, handle).delete(name),
        "[method]fields.append": lambda store, handle, name, value: _fields_get(store, handle).append(name, value),
        "[method]fields.entries": lambda store, handle: list(_fields_get(store, handle).entries),
        "[method]fields.clone": _clone,
        "[method]incoming-request.method": lambda store, handle: _method_value(_request_field(store, handle, "method")),
        "[method]incoming-request.path-with-query": lambda store, handle: _some(_request_field(store, handle, "path_with_query")),
        "[method]incoming-request.scheme": lambda store, handle: Some(_scheme_value(_request_field(store, handle, "scheme"))),
        "[method]incoming-request.authority": lambda store, handle: _some(_request_field(store, handle, "authority") or None),
        "[method]incoming-request.headers": lambda store, handle: _child_fields(_request_field(store, handle, "headers")),
        "[method]incoming-request.consume": lambda store, handle: _consume(store, handle, INCOMING_REQUEST, IncomingRequest),
        "[constructor]outgoing-request": lambda store, headers: _new(OUTGOING_REQUEST, OutgoingRequest(current().table.take(store, headers, FIELDS, Fields))),
        "[method]outgoing-request.body": lambda store, handle: _outgoing_body(store, handle, OUTGOING_REQUEST, OutgoingRequest),
        "[method]outgoing-request.method": lambda store, handle: _method_value(_get(store, handle, OUTGOING_REQUEST, OutgoingRequest).method),
        "[method]outgoing-request.set-method": _setter(OUTGOING_REQUEST, OutgoingRequest, "method", _method),
        "[method]outgoing-request.path-with-query": lambda store, handle: _some(_get(store, handle, OUTGOING_REQUEST, OutgoingRequest).path_with_query),
        "[method]outgoing-request.set-path-with-query": _setter(OUTGOING_REQUEST, OutgoingRequest, "path_with_query", _path),
        "[method]outgoing-request.scheme": lambda store, handle: _some(
            None if (scheme := _get(store, handle, OUTGOING_REQUEST, OutgoingRequest).scheme) is None else _scheme_value(scheme)
        ),
        "[method]outgoing-request.set-scheme": _setter(OUTGOING_REQUEST, OutgoingRequest, "scheme", _scheme),
        "[method]outgoing-request.authority": lambda store, handle: _some(_get(store, handle, OUTGOING_REQUEST, OutgoingRequest).authority),
        "[method]outgoing-request.set-authority": _setter(OUTGOING_REQUEST, OutgoingRequest, "authority", _authority),
        "[method]outgoing-request.headers": lambda store, handle: _child_fields(_get(store, handle, OUTGOING_REQUEST, OutgoingRequest).headers),
        "[constructor]request-options": lambda store: _new(REQUEST_OPTIONS, RequestOptions()),
        "[method]request-options.connect-timeout": _options_getter("connect_timeout"),
        "[method]request-options.set-connect-timeout": _options_setter("connect_timeout"),
        "[method]request-options.first-byte-timeout": _options_getter("first_byte_timeout"),
        "[method]request-options.set-first-byte-timeout": _options_setter("first_byte_timeout"),
        "[method]request-options.between-bytes-timeout": _options_getter("between_bytes_timeout"),
        "[method]request-options.set-between-bytes-timeout": _options_setter("between_bytes_timeout"),
        "[static]response-outparam.set": _set_response,
        "[method]incoming-response.status": lambda store, handle: _get(store, handle, INCOMING_RESPONSE, IncomingResponse).status,
        "[method]incoming-response.headers": lambda store, handle: _child_fields(_get(store, handle, INCOMING_RESPONSE, IncomingResponse).headers),
        "[method]incoming-response.consume": lambda store, handle: _consume(store, handle, INCOMING_RESPONSE, IncomingResponse),
        "[method]incoming-body.stream": _body_stream,
        "[static]incoming-body.finish": _body_finish,
        "[method]future-trailers.subscribe": _trailers_subscribe,
        "[method]future-trailers.get": _trailers_get,
        "[constructor]outgoing-response": _new_response,
        "[method]outgoing-response.status-code": lambda store, handle: _get(store, handle, OUTGOING_RESPONSE, OutgoingResponse).status,
        "[method]outgoing-response.set-status-code": _set_status,
        "[method]outgoing-response.headers": lambda store, handle: _child_fields(_get(store, handle, OUTGOING_RESPONSE, OutgoingResponse).headers),
        "[method]outgoing-response.body": lambda store, handle: _outgoing_body(store, handle, OUTGOING_RESPONSE, OutgoingResponse),
        "[method]outgoing-body.write": _body_write,
        "[static]outgoing-body.finish": _body_finish_out,
        "[method]future-incoming-response.subscribe": _future_subscribe,
        "[method]future-incoming-response.get": _future_get,
    },
)


def new_exchange(call: Call, request: IncomingRequest, services: Any = None) -> tuple[Exchange, ResourceHost, ResourceHost]:
    """The exchange of one request and the two handles `handle` is called with."""
    state = Exchange(call, request, Pipe(call), Wakeup(call.token), services=services)
    call.state["wasi:http"] = state
    return state, call.table.new(INCOMING_REQUEST, request), call.table.new(RESPONSE_OUTPARAM, ResponseOutparam())


# -- outgoing-handler ------------------------------------------------------------


def encode_outbound(method: str, url: str, headers: list[tuple[str, str]], body: bytes, timeout_ms: int) -> bytes:
    """The host API's `http_request` buffer (docs/wasm-abi.md)."""

    def field(data: bytes) -> bytes:
        return _U32.pack(len(data)) + data

    out = field(method.encode()) + field(url.encode()) + _U32.pack(len(headers))
    out += b"".join(field(name.encode()) + field(value.encode("latin-1")) for name, value in headers)
    return out + field(body) + _U32.pack(timeout_ms)


def decode_reply(data: bytes) -> IncomingResponse:
    from wasmkernel_wasm.engine import Fields as Reader

    read = Reader(data)
    status = read.u32()
    headers = [(read.field().decode("latin-1"), read.field()) for _ in range(read.u32())]
    body = read.field()
    read.end()
    return IncomingResponse(status, Fields(headers, mutable=False), IncomingBody(BytesSource(body)))


def _handle(store: Any, handle: ResourceAny, options: ResourceAny | None) -> Ok | Err:
    call = current()
    request = call.table.take(store, handle, OUTGOING_REQUEST, OutgoingRequest)
    settings = call.table.take(store, options, REQUEST_OPTIONS, RequestOptions) if options is not None else RequestOptions()
    state = call.state.get("wasi:http")
    services = state.services if isinstance(state, Exchange) else None
    if request.authority is None or not request.authority:
        return Err(Variant("HTTP-request-URI-invalid"))
    with call.cond:
        if isinstance(state, Exchange):
            if state.in_flight >= MAX_IN_FLIGHT:
                return Err(Variant("internal-error", Some(f"at most {MAX_IN_FLIGHT} outgoing requests in flight at once")))
            state.in_flight += 1
    url = outgoing_url(request.scheme, request.authority, request.path_with_query)
    headers = [(name, value) for name, value in request.headers.sendable() if not connection_specific(name)]
    future = FutureResponse()
    timeouts = [t for t in (settings.connect_timeout, settings.first_byte_timeout) if t is not None]
    timeout_ms = max(1, min(timeouts) // 1_000_000) if timeouts else 0

    async def perform() -> None:
        from wasmkernel_wasm.engine import HostDenied, HostFailure

        body = request.body
        if body is not None and isinstance(body.sink, BufferSink):
            while True:  # the guest may write the body after calling handle
                event = body.sink.done.arm()
                with call.cond:
                    if body.sink.closed:
                        break
                await event.wait()
        if body is not None and isinstance(body.sink, BufferSink) and body.sink.limit < 0:
            result: Ok | Err = Err(Variant("HTTP-request-body-size", None))
        elif services is None:
            result = Err(Variant("HTTP-request-denied"))
        else:
            data = bytes(body.sink.data) if body is not None and isinstance(body.sink, BufferSink) else b""
            buffer = encode_outbound(request.method, url, headers, data, timeout_ms)
            try:
                reply = await services.acall(call.component, "http", [buffer])
                result = Ok(decode_reply(reply))
            except HostDenied as exc:
                log.warning("component.outbound_denied", component=call.component, reason=str(exc))
                result = Err(Variant("HTTP-request-denied"))
            except HostFailure as exc:
                timed_out = "timed out" in exc.message
                result = Err(Variant("connection-timeout") if timed_out else Variant("internal-error", Some(exc.message[:200])))
        with call.cond:
            future.value = result
            call.cond.notify_all()

    async def performed() -> None:
        try:
            await perform()
        finally:
            with call.cond:
                if isinstance(state, Exchange):
                    state.in_flight -= 1
            if request.body is not None and isinstance(request.body.sink, BufferSink):
                request.body.sink.release()

    call.spawn(performed)
    return Ok(_new(FUTURE_RESPONSE, future))


OUTGOING_HANDLER = Interface({}, {"handle": _handle})

INTERFACES = {"wasi:http/types": TYPES, "wasi:http/outgoing-handler": OUTGOING_HANDLER}
