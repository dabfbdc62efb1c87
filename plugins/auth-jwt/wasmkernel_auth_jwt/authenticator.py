"""Verifying bearer tokens, and minting them for development."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import jwt

from wasmkernel import Connection, Identity, Unauthorized, WebSocket
from wasmkernel_auth_jwt.keys import Config, Keys, UnknownKey

SCHEME = "jwt"
#: A browser cannot set `Authorization` on a WebSocket handshake: it offers
#: the token as a subprotocol ``bearer.<jwt>`` instead (beside the protocol the
#: endpoint selects; the endpoint must not select this one).
SUBPROTOCOL_PREFIX = "bearer."

#: PyJWT's failures, most specific first, and the reason sent to the client.
REASONS: tuple[tuple[type[jwt.InvalidTokenError], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "invalid audience"),
    (jwt.InvalidIssuerError, "invalid issuer"),
    (jwt.InvalidIssuedAtError, "invalid 'iat' claim"),
    (jwt.exceptions.InvalidSubjectError, "invalid 'sub' claim"),
    (jwt.exceptions.InvalidJTIError, "invalid 'jti' claim"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    (jwt.InvalidSignatureError, "invalid signature"),
    (jwt.DecodeError, "malformed token"),
    (jwt.InvalidTokenError, "invalid token"),
)


#: Time claims must be RFC 7519 NumericDates: JSON numbers (not strings,
#: which PyJWT would convert) no later than 9999-12-31 (so not `1e30`).
TIME_CLAIMS = ("exp", "nbf", "iat")
MAX_NUMERIC_DATE = 253_402_300_799


def numeric_date_problem(claims: Mapping[str, Any]) -> str | None:
    """The first time claim that is not a valid NumericDate, as a reason."""
    for claim in TIME_CLAIMS:
        if claim not in claims:
            continue
        value = claims[claim]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_NUMERIC_DATE:
            return f"invalid '{claim}' claim (not a NumericDate)"
    return None


def reason_for(exc: jwt.InvalidTokenError) -> str:
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"token is missing the '{exc.claim}' claim"
    if isinstance(exc, UnknownKey):
        return str(exc)
    return next(reason for kind, reason in REASONS if isinstance(exc, kind))


def names(value: Any) -> list[str] | None:
    """A scope/roles claim as names: a space-separated string or a list of
    strings (None when it is neither)."""
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


@attrs.frozen
class JWTAuthenticator:
    """``Authorization: Bearer <jwt>``, or on a WebSocket handshake the
    subprotocol ``bearer.<jwt>`` (an `Authenticator`)."""

    config: Config
    keys: Keys
    scheme: str = SCHEME
    credential_headers: tuple[str, ...] = ("authorization",)

    @property
    def challenge(self) -> str:
        return f'Bearer realm="{self.config.realm}"'

    def reject(self, reason: str) -> Unauthorized:
        """A 401 for a presented but unusable token (RFC 6750 §3)."""
        challenge = f'{self.challenge}, error="invalid_token", error_description="{reason}"'
        return Unauthorized(reason, headers={"WWW-Authenticate": challenge})

    async def authenticate(self, request: Connection) -> Identity | None:
        header = request.headers.get("authorization")
        if header is None:
            if isinstance(request, WebSocket):
                offered = [p for p in request.subprotocols if p.startswith(SUBPROTOCOL_PREFIX)]
                return self.verify(offered[0][len(SUBPROTOCOL_PREFIX) :]) if offered else None
            return None
        kind, _, token = header.strip().partition(" ")
        if kind.lower() != "bearer":
            return None
        return self.verify(token.strip())

    def verify(self, token: str) -> Identity:
        """The identity a token vouches for; `Unauthorized` when it does not."""
        if not token:
            raise self.reject("missing bearer token")
        if len(token) > self.config.max_token_bytes:
            raise self.reject("token too large")
        config = self.config
        try:
            key = self.keys.select(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=list(config.algorithms),
                audience=config.audience,
                issuer=config.issuer,
                leeway=config.leeway_seconds,
                options={
                    "require": list(config.require),
                    "verify_aud": config.audience is not None,
                    "verify_iss": config.issuer is not None,
                },
            )
        except jwt.InvalidTokenError as exc:
            raise self.reject(reason_for(exc)) from None
        return self.identity(claims)

    def identity(self, claims: dict[str, Any]) -> Identity:
        config = self.config
        problem = numeric_date_problem(claims)
        if problem is not None:
            raise self.reject(problem)
        subject = claims.get(config.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise self.reject(f"token has no valid '{config.subject_claim}' claim")
        scopes = names(claims.get(config.scope_claim))
        if scopes is None:
            raise self.reject(f"invalid '{config.scope_claim}' claim")
        roles = names(claims.get(config.roles_claim))
        if roles is None:
            raise self.reject(f"invalid '{config.roles_claim}' claim")
        # mypy takes Identity's `converter=frozenset` for a generic parameter (kernel fix pending).
        return Identity(subject=subject, scheme=SCHEME, scopes=scopes, roles=roles, claims=claims)


def mint(config: Config, secret: bytes, subject: str, scopes: Iterable[str], roles: Iterable[str], ttl: int, now: float | None = None) -> str:
    """An HS token that `JWTAuthenticator` with `config` accepts."""
    issued = int(time.time() if now is None else now)
    payload: dict[str, Any] = {config.subject_claim: subject, "iat": issued, "nbf": issued, "exp": issued + ttl}
    scope_list, role_list = list(scopes), list(roles)
    if scope_list:
        payload[config.scope_claim] = " ".join(scope_list)
    if role_list:
        payload[config.roles_claim] = role_list
    optional: Mapping[str, str | None] = {"iss": config.issuer, "aud": config.audience}
    payload.update({claim: value for claim, value in optional.items() if value is not None})
    return jwt.encode(payload, secret, algorithm=config.algorithms[0])
