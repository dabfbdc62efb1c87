"""What a host of untrusted code needs from a request: which headers carry
credentials (never passed to a module unless granted), and the kernel
response for what a module answered. (Cancelling a call whose client went
away is the kernel's: `Request.cancelled_on_disconnect`.)"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

from wasmkernel import Application, Authenticator, Response
from wasmkernel_wasm import WasmResponse
from wasmkernel_wasm.config import ModuleTable

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


def header_policy(app: Application, table: ModuleTable) -> Callable[[str], frozenset[str]]:
    """module name → lower-case names of the request headers it must not
    see: every authenticator's credential headers and the table's
    `secret_headers`, minus the module's `grant_headers`. Call it once every
    plugin is configured (from `wasmkernel_routes` on)."""
    credentials = credential_headers(found for _, found in app.hooks.gather("wasmkernel_authenticators"))

    @functools.cache
    def withheld(module: str) -> frozenset[str]:
        return table.withheld_headers(table.spec(module), credentials)

    return withheld


def kernel_response(result: WasmResponse) -> Response:
    """The kernel response for what a module answered."""
    return Response(result.body, status=result.status, headers=list(result.headers))
