"""A fake authentication scheme for tests of protected routes: no tokens or
keys to mint, the request says who it is.

``app_from({"fake-auth": {}, "authz": {}, ...}, extra_plugins={"fake-auth": fake})``
then ``client.get("/x", headers=fake.headers("ada", scopes=["feed:write"]))``.
The authz plugin enforces routes' requirements against that identity exactly
as it does for JWT or API keys (`fake.calls` counts the authentications)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from wasmkernel import Application, Identity, Request, Unauthorized, hookimpl

HEADER = "x-test-identity"
SCHEME = "test"


@attrs.define(eq=False)  # a plugin: compared (and hashed) by identity
class FakeIdentity:
    """An in-memory plugin contributing the authenticator of scheme "test":
    header ``X-Test-Identity: <subject>; scopes=<a> <b>; roles=<r>`` (scopes
    and roles optional). A subject named `invalid_subject` is an invalid
    credential (401), as an expired token would be."""

    invalid_subject: str = "invalid"
    calls: int = 0
    scheme: str = SCHEME
    challenge: str = 'Test realm="wasmkernel"'

    @staticmethod
    def headers(subject: str, scopes: Iterable[str] = (), roles: Iterable[str] = ()) -> dict[str, str]:
        """The request headers that make the caller `subject` with these grants."""
        return {HEADER: f"{subject}; scopes={' '.join(scopes)}; roles={' '.join(roles)}"}

    @hookimpl
    def wasmkernel_authenticators(self, app: Application) -> list[Any]:
        return [self]

    async def authenticate(self, request: Request) -> Identity | None:
        self.calls += 1
        value = request.headers.get(HEADER)
        if value is None:
            return None
        subject, *fields = (part.strip() for part in value.split(";"))
        if not subject or subject == self.invalid_subject:
            raise Unauthorized("invalid test identity")
        grants = dict(field.partition("=")[::2] for field in fields)
        return Identity(subject=subject, scheme=self.scheme, scopes=grants.get("scopes", "").split(), roles=grants.get("roles", "").split())
