"""Authentication and authorization contracts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from kernel.http import Identity, Request
from kernel.routing import AuthRequirement, Route


class Authenticator(Protocol):
    """An authentication scheme (contributed through `wasmkernel_authenticators`).

    `challenge` is the `WWW-Authenticate` value sent with 401 answers, e.g.
    `Bearer realm="wasmkernel"`. Header-based schemes may also expose
    `header` (the header name they read), which the openapi plugin documents,
    and `credential_headers` (every request header carrying their
    credentials), which hosts of untrusted code never pass on (see
    `credential_headers`).
    """

    scheme: str
    challenge: str

    async def authenticate(self, request: Request) -> Identity | None:
        """Return the caller's identity; None when the request carries no
        credentials for this scheme; raise `Unauthorized` when it carries
        credentials that are invalid (expired, tampered, unknown)."""


#: Decides whether `identity` may use `route` under `requirement`; returns the
#: reason for a refusal (sent with 403) or None to allow.
AccessPolicy = Callable[[Identity, AuthRequirement, Route], "str | None"]


def missing_grants(identity: Identity, requirement: AuthRequirement) -> str | None:
    """The built-in policy: every required scope and role must be granted."""
    scopes = sorted(set(requirement.scopes) - identity.scopes)
    roles = sorted(set(requirement.roles) - identity.roles)
    if scopes:
        return "missing scope(s): " + ", ".join(scopes)
    if roles:
        return "missing role(s): " + ", ".join(roles)
    return None


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
