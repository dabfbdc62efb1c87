"""A wasi:http component in Python (componentize-py): a greeting, an echo of
the request body (streamed in and out), the request's headers, and an
outgoing request to an allow-listed origin (`/fetch?url=...`)."""

from urllib.parse import parse_qs

from componentize_py_types import Err, Ok

from wit_world import exports
from wit_world.imports import outgoing_handler, poll
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    Method_Get,
    OutgoingBody,
    OutgoingRequest,
    OutgoingResponse,
    ResponseOutparam,
    Scheme_Http,
    Scheme_Https,
)

CHUNK = 65536


def respond(out: ResponseOutparam, status: int, headers: list[tuple[str, bytes]], chunks) -> None:
    response = OutgoingResponse(Fields.from_list(headers))
    response.set_status_code(status)
    body = response.body()
    ResponseOutparam.set(out, Ok(response))
    stream = body.write()
    for chunk in chunks:
        for start in range(0, len(chunk), 4096):
            stream.blocking_write_and_flush(chunk[start : start + 4096])
    stream.__exit__(None, None, None)
    OutgoingBody.finish(body, None)


def read_all(stream):
    while True:
        try:
            chunk = stream.blocking_read(CHUNK)
        except Err as error:
            if isinstance(error.value, StreamError_Closed):
                return
            raise
        if chunk:
            yield chunk


def fetch(url: str) -> tuple[int, bytes]:
    scheme, _, rest = url.partition("://")
    authority, _, path = rest.partition("/")
    request = OutgoingRequest(Fields())
    request.set_method(Method_Get())
    request.set_scheme(Scheme_Https() if scheme == "https" else Scheme_Http())
    request.set_authority(authority)
    request.set_path_with_query("/" + path)
    future = outgoing_handler.handle(request, None)
    pollable = future.subscribe()
    poll.poll([pollable])
    result = future.get()  # once ready: Ok(Ok(response)) or Ok(Err(error-code))
    if isinstance(result.value, Err):
        raise result.value
    response = result.value.value
    body = response.consume()
    data = b"".join(read_all(body.stream()))
    return response.status(), data


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        path_query = request.path_with_query() or "/"
        path, _, query = path_query.partition("?")
        if path.endswith("/echo"):
            body = request.consume()
            stream = body.stream()
            respond(response_out, 200, [("content-type", b"application/octet-stream")], read_all(stream))
        elif path.endswith("/headers"):
            lines = [f"{name}: {value.decode()}\n".encode() for name, value in request.headers().entries()]
            respond(response_out, 200, [("content-type", b"text/plain")], lines)
        elif path.endswith("/fetch"):
            url = parse_qs(query).get("url", [""])[0]
            try:
                status, data = fetch(url)
            except Err as error:
                respond(response_out, 502, [("content-type", b"text/plain")], [f"outgoing request failed: {error.value}\n".encode()])
                return
            respond(response_out, 200, [("content-type", b"text/plain")], [f"upstream said {status}: ".encode(), data])
        else:
            name = parse_qs(query).get("name", ["world"])[0]
            respond(response_out, 200, [("content-type", b"text/plain; charset=utf-8")], [f"Hello, {name}, from Python!\n".encode()])
