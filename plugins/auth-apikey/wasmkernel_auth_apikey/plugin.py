"""The auth-apikey plugin: API keys presented in a request header.

Config (`[plugins.auth-apikey.config]`); keys are secrets, so they come from
``{ env = ... }`` / ``{ file = ... }`` references, never from the file itself
(the kernel resolves references before this plugin sees them, so it cannot
tell a literal apart: keep literals out of the registry):

- `keys`: comma-separated ``name:key`` pairs (default ``""``: no keys), e.g.
  ``keys = { env = "WASMKERNEL_API_KEYS", default = "" }`` with
  ``WASMKERNEL_API_KEYS="ci:4f9c...,dashboard:Zp0q..."``
- `key`: per-key tables ``[[plugins.auth-apikey.config.key]]`` with `name`,
  `key` (a secret reference) and optional `scopes` / `roles` (default: the
  plugin-wide ones below)
- `scopes`, `roles`: granted to every key without its own (default none)
- `header`: the request header carrying the key (default ``X-API-Key``)
- `min_key_length`: shortest key accepted at startup (default 16)

Only SHA-256 digests of the keys are kept. A presented key is hashed and
compared with `hmac.compare_digest` against every stored digest, without
stopping at a match, so timing reveals neither which key matched nor whether
one did. No header: no identity (another scheme may apply); a wrong key: 401.
"""

from __future__ import annotations

import hashlib
import hmac

import attrs

from wasmkernel import Application, ConfigError, ConfiguredPlugin, Connection, Identity, Unauthorized, hookimpl

SCHEME = "apikey"


@attrs.frozen
class KeyConfig:
    """One ``[[key]]`` table."""

    name: str = attrs.field(validator=attrs.validators.min_len(1))
    key: str = attrs.field(repr=False)
    scopes: tuple[str, ...] | None = None
    roles: tuple[str, ...] | None = None


@attrs.frozen
class Config:
    keys: str = ""
    key: tuple[KeyConfig, ...] = ()
    scopes: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    header: str = attrs.field(default="X-API-Key", validator=attrs.validators.min_len(1))
    min_key_length: int = attrs.field(default=16, validator=attrs.validators.ge(1))


@attrs.frozen
class StoredKey:
    """A key as kept in memory: its name, grants and SHA-256 digest only."""

    name: str
    digest: bytes = attrs.field(repr=False)
    scopes: frozenset[str]
    roles: frozenset[str]


def digest(secret: bytes) -> bytes:
    return hashlib.sha256(secret).digest()


def parse_key_list(text: str) -> list[tuple[str, str]]:
    """``"a:k1, b:k2"`` → ``[("a", "k1"), ("b", "k2")]``; error messages never
    contain the keys themselves."""
    pairs = []
    for position, item in enumerate((part.strip() for part in text.split(",")), start=1):
        if not item:
            continue
        name, sep, secret = item.partition(":")
        if not sep or not name.strip() or not secret.strip():
            raise ConfigError("keys", f"entry {position} is not of the form 'name:key'")
        pairs.append((name.strip(), secret.strip()))
    return pairs


def stored_keys(config: Config) -> tuple[StoredKey, ...]:
    """Both config forms as digests; refuses short or duplicate keys."""
    entries: list[tuple[str, str, str, tuple[str, ...] | None, tuple[str, ...] | None]]
    entries = [("keys", name, secret, None, None) for name, secret in parse_key_list(config.keys)]
    entries += [(f"key[{i}]", k.name, k.key, k.scopes, k.roles) for i, k in enumerate(config.key)]
    keys: list[StoredKey] = []
    for where, name, secret, scopes, roles in entries:
        if len(secret) < config.min_key_length:
            raise ConfigError(
                where,
                f"key '{name}' is shorter than {config.min_key_length} characters; "
                'generate one with: python -c "import secrets; print(secrets.token_urlsafe(32))"',
            )
        stored = StoredKey(
            name=name,
            digest=digest(secret.encode("utf-8")),
            scopes=frozenset(config.scopes if scopes is None else scopes),
            roles=frozenset(config.roles if roles is None else roles),
        )
        for other in keys:
            if other.name == name:
                raise ConfigError(where, f"key name '{name}' is used twice")
            if other.digest == stored.digest:
                raise ConfigError(where, f"keys '{other.name}' and '{name}' are the same secret")
        keys.append(stored)
    return tuple(keys)


@attrs.frozen
class ApiKeyAuthenticator:
    """Authenticates the key in `header` against `keys` (an `Authenticator`)."""

    keys: tuple[StoredKey, ...]
    header: str = "X-API-Key"
    scheme: str = SCHEME

    @property
    def challenge(self) -> str:
        return f'ApiKey header="{self.header}"'

    @property
    def credential_headers(self) -> tuple[str, ...]:
        return (self.header,)

    def find(self, presented: bytes) -> StoredKey | None:
        """The key whose digest equals `presented`'s, comparing with every key."""
        wanted = digest(presented)
        found = None
        for key in self.keys:
            if hmac.compare_digest(key.digest, wanted):
                found = key
        return found

    async def authenticate(self, request: Connection) -> Identity | None:
        value = request.headers.get(self.header)
        if value is None:
            return None
        # Headers are decoded as latin-1: encoding back yields the raw bytes.
        key = self.find(value.strip().encode("latin-1"))
        if key is None:
            raise Unauthorized("invalid API key", headers={"WWW-Authenticate": self.challenge})
        # mypy takes Identity's `converter=frozenset` for a generic parameter (kernel fix pending).
        return Identity(subject=key.name, scheme=SCHEME, scopes=key.scopes, roles=key.roles, claims={"key_name": key.name})


class Plugin(ConfiguredPlugin[Config]):
    order = 20
    config_class = Config

    def __init__(self) -> None:
        super().__init__()
        self.authenticator = ApiKeyAuthenticator(keys=())

    def configured(self) -> None:
        self.authenticator = ApiKeyAuthenticator(keys=stored_keys(self.config), header=self.config.header)

    @hookimpl
    def wasmkernel_authenticators(self, app: Application) -> list[ApiKeyAuthenticator]:
        return [self.authenticator]
