"""What a host of untrusted, possibly long-running code needs from a request:
which headers carry credentials (never passed to a module unless granted),
and cancelling a call when its client goes away."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import trio

from wasmkernel import Authenticator, ClientDisconnected, Request

#: Headers that carry credentials whichever schemes are configured.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def credential_headers(authenticators: Iterable[Authenticator]) -> frozenset[str]:
    """Lower-case names of every request header carrying credentials: the
    usual ones (`CREDENTIAL_HEADERS`) and those each authenticator declares
    (its `credential_headers`, or the `header` it reads)."""
    names = set(CREDENTIAL_HEADERS)
    for authenticator in authenticators:
        declared = getattr(authenticator, "credential_headers", None)
        header = getattr(authenticator, "header", None)
        names.update(declared if declared is not None else ())
        if isinstance(header, str):
            names.add(header)
    return frozenset(name.lower() for name in names)


@asynccontextmanager
async def cancelled_on_disconnect(request: Request) -> AsyncIterator[None]:
    """Run the block until it ends or the client goes away (an HTTP/1.1
    connection closed, an HTTP/2 stream reset): then the block is
    cancelled and `ClientDisconnected` raised. Reads the body first (the
    block can still use `body()`), so long computations stop with their client."""
    await request.body()
    gone = False
    try:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                nonlocal gone
                while (await request.receive())["type"] != "http.disconnect":
                    pass
                gone = True
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            try:
                yield
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The block's own error (e.g. an HTTPError), not wrapped by nurseries.
        error: BaseException = group
        while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
            error = error.exceptions[0]
        if error is group:
            raise
        raise error from None
    if gone:
        raise ClientDisconnected()
