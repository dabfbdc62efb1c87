"""What a host of untrusted code needs from a request: which headers carry
credentials (never passed to a module unless granted). (Cancelling a call
whose client went away is the kernel's: `Request.cancelled_on_disconnect`.)"""

from __future__ import annotations

from collections.abc import Iterable

from wasmkernel import Authenticator

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
