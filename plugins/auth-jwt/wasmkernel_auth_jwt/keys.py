"""The plugin's configuration and the key material it verifies tokens with,
checked once at startup so that a weak or inconsistent setup never serves."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import get_default_algorithms

from wasmkernel import ConfigError

#: RFC 7518 §3.2: an HMAC key must be at least as long as the hash output.
HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
GENERATE_SECRET = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'


@attrs.frozen
class Config:
    algorithms: tuple[str, ...] = attrs.field(default=("HS256",), validator=attrs.validators.min_len(1))
    secret: str | None = attrs.field(default=None, repr=False)
    public_key: str | None = None
    jwks_file: str | None = None
    issuer: str | None = None
    audience: str | None = None
    leeway_seconds: int = attrs.field(default=30, validator=attrs.validators.ge(0))
    require: tuple[str, ...] = ("exp",)
    scope_claim: str = attrs.field(default="scope", validator=attrs.validators.min_len(1))
    roles_claim: str = attrs.field(default="roles", validator=attrs.validators.min_len(1))
    subject_claim: str = attrs.field(default="sub", validator=attrs.validators.min_len(1))
    max_token_bytes: int = attrs.field(default=8192, validator=attrs.validators.ge(64))
    realm: str = attrs.field(default="wasmkernel", validator=attrs.validators.matches_re(r'[^"\\]+'))

    @property
    def uses_hmac(self) -> bool:
        return self.algorithms[0].startswith("HS")


#: What `jwt.decode` accepts as a verification key.
VerificationKey = Any


class UnknownKey(jwt.InvalidTokenError):
    """The token names no key this configuration holds."""


@attrs.frozen
class Keys:
    """Verification material: one static key (HMAC secret or public key), or
    a JWKS whose keys are selected by the token's ``kid``."""

    static: VerificationKey = attrs.field(default=None, repr=False)
    by_kid: Mapping[str | None, jwt.PyJWK] = attrs.field(factory=dict, repr=False)

    def select(self, token: str) -> VerificationKey:
        """The key for `token`; 401 if none. Only a JWKS reads the token's
        (unverified) header: a static key is the one key whatever it says."""
        if self.static is not None:
            return self.static
        kid = jwt.get_unverified_header(token).get("kid")
        if kid is None and len(self.by_kid) == 1:
            return next(iter(self.by_kid.values()))
        if kid is None:
            raise UnknownKey("token has no 'kid' header")
        if not isinstance(kid, str) or kid not in self.by_kid:
            raise UnknownKey("unknown key id")
        return self.by_kid[kid]


def load(config: Config, base: Path) -> Keys:
    """Check the parsed config and load its keys; `base` anchors a relative `jwks_file`."""
    check_algorithms(config.algorithms)
    if config.uses_hmac:
        return Keys(static=hmac_secret(config))
    if config.secret is not None:
        raise ConfigError("secret", "a shared secret cannot be used with public-key algorithms (key confusion); use public_key or jwks_file")
    if (config.public_key is None) == (config.jwks_file is None):
        raise ConfigError("public_key", f"{'/'.join(config.algorithms)} needs exactly one of public_key or jwks_file")
    if config.public_key is not None:
        return Keys(static=public_key(config.public_key, config.algorithms))
    assert config.jwks_file is not None
    return Keys(by_kid=jwks(base / Path(config.jwks_file).expanduser(), config.algorithms))


def check_algorithms(algorithms: tuple[str, ...]) -> None:
    supported = sorted(set(get_default_algorithms()) - {"none"})
    for name in algorithms:
        if name.lower() == "none":
            raise ConfigError("algorithms", "'none' is refused: it would accept unsigned tokens")
        if name not in supported:
            raise ConfigError("algorithms", f"unknown algorithm {name!r} (supported: {', '.join(supported)})")
    if len({name.startswith("HS") for name in algorithms}) > 1:
        raise ConfigError(
            "algorithms",
            "mixing HMAC (HS*) and public-key algorithms enables key-confusion attacks; configure one family",
        )


def hmac_secret(config: Config) -> bytes:
    if config.public_key is not None or config.jwks_file is not None:
        raise ConfigError("public_key", "HS* algorithms verify with `secret` only; remove public_key/jwks_file")
    if config.secret is None:
        raise ConfigError("secret", 'HS* algorithms need a secret: secret = { env = "WASMKERNEL_JWT_SECRET" }')
    secret = config.secret.encode("utf-8")
    needed = max(HMAC_MIN_BYTES[name] for name in config.algorithms)
    if len(secret) < needed:
        problem = "is empty" if not secret else f"is {len(secret)} bytes long"
        raise ConfigError(
            "secret",
            f"the secret {problem}; {'/'.join(config.algorithms)} needs at least {needed} bytes. Generate one with: {GENERATE_SECRET}",
        )
    return secret


def public_key(pem: str, algorithms: tuple[str, ...]) -> VerificationKey:
    try:
        key = load_pem_public_key(pem.encode("utf-8"))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError("public_key", "not a PEM-encoded public key (-----BEGIN PUBLIC KEY-----)") from None
    for name in algorithms:
        try:
            get_default_algorithms()[name].prepare_key(key)
        except (TypeError, ValueError, jwt.InvalidKeyError):
            raise ConfigError("public_key", f"this {type(key).__name__.lstrip('_')} cannot verify {name} tokens") from None
    return key


def jwks(path: Path, algorithms: tuple[str, ...]) -> dict[str | None, jwt.PyJWK]:
    """The file's usable public keys by ``kid``, for the allowed algorithms."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("jwks_file", f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError("jwks_file", f"{path} is not JSON: {exc}") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError("jwks_file", f'{path} is not a JWK set: expected {{"keys": [...]}}')
    found: dict[str | None, jwt.PyJWK] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or entry.get("kty") == "oct":
            raise ConfigError("jwks_file", f"{path}: keys[{index}] is not a public key")
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError as exc:
            raise ConfigError("jwks_file", f"{path}: keys[{index}] is not a usable JWK ({type(exc).__name__})") from None
        if key.algorithm_name not in algorithms:
            continue
        if key.key_id in found:
            raise ConfigError("jwks_file", f"{path}: kid {key.key_id!r} appears twice")
        found[key.key_id] = key
    if not found:
        raise ConfigError("jwks_file", f"{path} holds no key for {'/'.join(algorithms)}")
    if None in found and len(found) > 1:
        raise ConfigError("jwks_file", f"{path}: with several keys, every key needs a 'kid'")
    return found
