"""Routes serving components: a request in, the component's streamed response out.

`wasi-http`: the request becomes an `incoming-request` whose body is fed to
the guest as it arrives; `handle` runs in a worker thread; once the guest
sets its response, its head is checked (status, headers: 502 if
unsendable) and its body streamed to the client as the guest writes it.
The client leaving stops the call. `wasi-cli`: run WAGI-style like the core
`wasi` kind (body on stdin, CGI environment, argv from the route, stdout
parsed as CGI output or served raw).
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import structlog
import trio
import wasmtime
from wasmkernel_wasm import WasmBadResponse, WasmError, WasmRequest
from wasmkernel_wasm.engine import STDOUT_LIMIT, cgi_env, parse_cgi_output

from wasmkernel import ClientDisconnected, PayloadTooLarge, Request, Response, Route, StreamingResponse, head_problem
from wasmkernel_components.call import CONSOLE_LIMIT, Call
from wasmkernel_components.config import ComponentsConfig
from wasmkernel_components.host import ComponentHost
from wasmkernel_components.runtime import Interrupt, Outcome, run
from wasmkernel_components.wasi.http import Exchange, Fields, IncomingBody, IncomingRequest, connection_specific, new_exchange
from wasmkernel_components.wasi.io import Failed, Pipe

log = structlog.get_logger("wasmkernel.components")
GONE = "the client went away"


def _log_console(call: Call) -> None:
    """The guest's stdout/stderr as fields of one log line each (never raw text)."""
    for stream, data in (("stdout", call.stdout), ("stderr", call.stderr)):
        if data:
            log.info(f"component.{stream}", component=call.component, text=bytes(data[:CONSOLE_LIMIT]).decode("utf-8", "replace"))


async def _feed_body(request: Request, pipe: Pipe, limit: int, gone: Callable[[], None]) -> None:
    """Give the guest the request body as it arrives (at most `limit` bytes),
    then watch for the client leaving: that stops the call."""
    received = getattr(request, "_body", None)  # a middleware may have read it already
    if received is not None:
        await pipe.put(received)
        pipe.close()
    else:
        total, more = 0, True
        while more:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                pipe.close("the client went away")
                gone()
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                pipe.close(f"the request body exceeds {limit} bytes")
                return
            await pipe.put(chunk)
            more = message.get("more_body", False)
        pipe.close()
    while (await request.receive())["type"] != "http.disconnect":
        pass
    gone()


def _http_request(request: Request, withheld: frozenset[str], pipe: Pipe) -> IncomingRequest:
    query = request.query_string.decode("latin-1")
    path = request.raw_path.decode("latin-1") + (f"?{query}" if query else "")
    # Connection-specific fields are the server's (as wasmtime serve drops them): a proxy
    # component cloning these never forwards the client's Upgrade or TE.
    headers = [(name, value.encode("latin-1", "replace")) for name, value in request.headers if name.lower() not in withheld and not connection_specific(name)]
    return IncomingRequest(
        method=request.method,
        path_with_query=path,
        scheme=request.scheme,
        authority=request.headers.get("host") or "",
        headers=Fields(headers, mutable=False),
        body=IncomingBody(pipe),
    )


def _spawner(nursery: trio.Nursery) -> Callable[[Callable[[], Awaitable[Any]]], None]:
    """Start a call's host task in `nursery` while it is open (a guest thread's
    late request, arriving after the call ended, is dropped)."""

    def spawn(task: Callable[[], Awaitable[Any]]) -> None:
        if not nursery.cancel_scope.cancel_called:
            nursery.start_soon(task)

    return spawn


class HttpCall:
    """One wasi-http call: runs `handle` in a thread, hands the response head over, then streams the body."""

    def __init__(self, host: ComponentHost, name: str, request: Request, withheld: frozenset[str]) -> None:
        self.host, self.name, self.request = host, name, request
        loaded = host.get(name)
        self.spec = loaded.spec
        self.timeout = host.config.timeout_of(loaded.spec)
        self.call = Call(
            component=name,
            token=trio.lowlevel.current_trio_token(),
            deadline=time.monotonic() + self.timeout,
            env=tuple(loaded.spec.env.items()),
            args=(name,),
        )
        self.call.state["dirs"] = loaded.dirs
        self.pipe = Pipe(self.call)
        self.exchange, self.request_handle, self.outparam = new_exchange(self.call, _http_request(request, withheld, self.pipe), host.services)
        self.interrupt = Interrupt()
        self.outcome: Outcome | None = None
        self.finished = trio.Event()
        self.started = time.perf_counter()
        #: The whole response was handed to the server.
        self.sent = False

    def gone(self) -> None:
        """The client left: stop the call (blocked host calls trap, running code at the next tick),
        unless its whole response was already sent (what the guest still does is bounded by its timeout)."""
        if not self.sent:
            self.call.stop(GONE)
            self.interrupt.stop()

    def _enter(self, store: wasmtime.Store, func: Any) -> None:
        func(store, self.request_handle, self.outparam)
        func.post_return(store)

    def _job(self) -> Outcome:
        try:
            return run(self.host.get(self.name).prepared, self.call, self.interrupt, self.timeout, self._enter)
        finally:
            self.exchange.body.close("the component returned without finishing its response body")
            self.exchange.head.set()

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The call's task (in the host's nursery, so it outlives the endpoint while the body streams)."""
        try:
            async with self.host.slot(self.name), trio.open_nursery() as nursery:
                # The guest's outgoing requests run in this nursery: they end with the call.
                self.call.spawner = _spawner(nursery)
                nursery.start_soon(_feed_body, self.request, self.pipe, self.spec.max_body_bytes, self.gone)
                task_status.started()
                with trio.move_on_after(self.timeout + 1.0):
                    self.outcome = await self.host.in_thread(self._job, self.interrupt)
                nursery.cancel_scope.cancel()
        finally:
            if self.outcome is None:
                self.interrupt.stop()
                self.call.stop("the call was abandoned")
                self.outcome = Outcome("timeout", "abandoned at its deadline")
            self.host.metrics.record(self.name, "handle", time.perf_counter() - self.started, self.outcome.error)
            _log_console(self.call)
            self.finished.set()
            self.exchange.head.set()

    async def response(self) -> Response:
        """Wait for the response head (or the call's end), then stream the body."""
        state: Exchange = self.exchange
        while True:
            event = state.head.arm()
            if state.status is not None or state.problem is not None or self.finished.is_set():
                break
            await event.wait()
        if self.call.stopped == GONE:
            raise ClientDisconnected()
        if state.status is None:
            await self.finished.wait()
            assert self.outcome is not None
            if self.outcome.error is not None:
                raise self.host.error(self.name, self.outcome, self.timeout)
            if state.problem is not None:
                raise WasmError(f"component '{self.name}' failed: {state.problem}")
            raise WasmError(f"component '{self.name}' returned without setting a response")
        problem = head_problem(state.status, state.headers)
        if problem is not None:
            self.call.stop("its response was refused")
            self.interrupt.stop()
            log.warning("wasm.bad_response", module=self.name, reason=problem)
            raise WasmBadResponse(f"component '{self.name}' returned an unsendable response: {problem}")
        headers = [(name, value) for name, value in state.headers if name != "content-length"]
        if self.request.method == "HEAD":  # no body is sent: what the guest writes is dropped
            state.body.discard()
            self.sent = True
        return StreamingResponse(self._body(), status=state.status, headers=headers)

    async def _body(self) -> AsyncIterator[bytes]:
        complete = False
        try:
            while True:
                try:
                    chunk = await self.pipe_out()
                except Exception as exc:  # the guest failed mid-body: the response is cut off
                    log.warning("component.body_cut", component=self.name, reason=str(exc))
                    raise
                if chunk is None:
                    complete = self.sent = True
                    break
                yield chunk
        finally:
            if not complete and not self.finished.is_set():  # the client left mid-body
                self.gone()

    async def pipe_out(self) -> bytes | None:
        try:
            return await self.exchange.body.get()
        except Failed as exc:
            raise WasmError(f"component '{self.name}' response body failed: {exc}") from None


def http_endpoint(host: ComponentHost, name: str, withheld: Callable[[], frozenset[str]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        spec = host.get(name).spec
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > spec.max_body_bytes:
            raise PayloadTooLarge(f"Request body exceeds {spec.max_body_bytes} bytes")
        call = HttpCall(host, name, request, withheld())
        await host.begin(call.run)
        return await call.response()

    return endpoint


def cli_endpoint(host: ComponentHost, name: str, route: str, withheld: Callable[[], frozenset[str]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        loaded = host.get(name)
        spec = loaded.spec
        body = await request.body()
        if len(body) > spec.max_body_bytes:
            raise PayloadTooLarge(f"Request body exceeds {spec.max_body_bytes} bytes")
        wreq = WasmRequest(
            method=request.method,
            path=request.path,
            query=request.query_string.decode("latin-1"),
            params=tuple((key, str(value)) for key, value in request.path_params.items()),
            headers=tuple((key.lower(), value) for key, value in request.headers if key.lower() not in withheld()),
            body=body,
        )
        hostname = (request.headers.get("host") or "localhost").rsplit(":", 1)[0]
        server = request.scope.get("server") or ("localhost", 80)
        env = cgi_env(wreq, route, server_name=hostname, server_port=str(server[1]))
        module = spec.as_module()
        timeout = host.config.timeout_of(spec)
        call = Call(
            component=name,
            token=trio.lowlevel.current_trio_token(),
            deadline=time.monotonic() + timeout,
            env=(*spec.env.items(), *env.items()),
            args=tuple(module.argv(wreq.params)),
            stdout_limit=STDOUT_LIMIT,
        )
        call.state["stdin"] = body
        call.state["dirs"] = loaded.dirs
        interrupt = Interrupt()

        def enter(store: wasmtime.Store, func: Any) -> None:
            result = func(store)
            func.post_return(store)
            if call.exit_status is None:
                call.exit_status = 1 if result is not None and getattr(result, "tag", None) == "err" else 0

        def job() -> Outcome:
            return run(loaded.prepared, call, interrupt, timeout, enter)

        async with host.slot(name):
            with trio.move_on_after(timeout + 1.0) as scope:
                outcome = await host.in_thread(job, interrupt)
        if scope.cancelled_caught:
            interrupt.stop()
            outcome = Outcome("timeout", "abandoned at its deadline")
        host.metrics.record(name, "run", 0.0, outcome.error)
        stdout = bytes(call.stdout)
        call.stdout.clear()
        _log_console(call)
        if outcome.error is not None:
            raise host.error(name, outcome, timeout)
        status = module.exit_status.get(str(outcome.exit_status))
        if status is None and outcome.exit_status != 0:
            raise WasmError(f"component '{name}' failed: exited with status {outcome.exit_status}")
        if module.output == "raw":
            return Response(stdout, status=status or 200, headers=[("content-type", module.content_type)])
        result = parse_cgi_output(stdout, name)
        return Response(result.body, status=status or result.status, headers=list(result.headers))

    return endpoint


def bind_routes(host: ComponentHost, config: ComponentsConfig, credentials: Callable[[], Iterable[str]]) -> list[Route]:
    """The registry's component routes."""

    @functools.cache
    def withheld(name: str) -> frozenset[str]:
        spec = config.spec(name)
        hidden = {header.lower() for header in (*credentials(), *config.secret_headers)}
        return frozenset(hidden - {header.lower() for header in spec.grant_headers})

    routes: list[Route] = []
    for index, entry in enumerate(config.routes):
        kind = config.spec(entry.module).kind
        for pattern in entry.patterns():
            hidden = functools.partial(withheld, entry.module)
            endpoint = http_endpoint(host, entry.module, hidden) if kind == "wasi-http" else cli_endpoint(host, entry.module, pattern, hidden)
            routes.append(
                Route(
                    pattern,
                    endpoint,
                    methods=tuple(entry.methods),
                    name=(entry.name or f"component:{entry.module}:{index}") + ("" if pattern == entry.patterns()[0] else ":prefix"),
                    auth=entry.requirement(),
                    summary=f"WebAssembly component '{entry.module}' ({kind})",
                    tags=("wasm", "component", *entry.tags),
                )
            )
    return routes
