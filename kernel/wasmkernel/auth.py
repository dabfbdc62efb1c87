"""Authentication and authorization contracts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from wasmkernel.connection import Connection, Identity
from wasmkernel.routing import AuthRequirement, Route


class Authenticator(Protocol):
    """An authentication scheme (from `wasmkernel_authenticators`). `challenge`
    is the `WWW-Authenticate` value of its 401 answers. Header schemes may
    expose `header` (documented by openapi) and `credential_headers` (never
    passed on to untrusted code)."""

    scheme: str
    challenge: str

    async def authenticate(self, connection: Connection) -> Identity | None:
        """Return the caller's identity (of an HTTP request or a WebSocket
        handshake); None when it carries no credentials for this scheme; raise `Unauthorized` when it carries
        credentials that are invalid (expired, tampered, unknown)."""


#: Decides whether `identity` may use `route` under `requirement`; returns the
#: reason for a refusal (sent with 403) or None to allow.
AccessPolicy = Callable[[Identity, AuthRequirement, Route], "str | None"]
