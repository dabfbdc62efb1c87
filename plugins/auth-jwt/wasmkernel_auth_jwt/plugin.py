"""The auth-jwt plugin: ``Authorization: Bearer <jwt>`` verified with PyJWT.

Config (`[plugins.auth-jwt.config]`):
- `algorithms`: allowed ``alg`` values (default ``["HS256"]``). ``none`` is
  refused, and HMAC (HS*) cannot be mixed with public-key algorithms
  (RS*/PS*/ES*/EdDSA): that mix enables key-confusion attacks.
- `secret`: the HMAC key for HS*, as a secret reference
  (``{ env = "WASMKERNEL_JWT_SECRET" }``); at least 32/48/64 bytes for
  HS256/384/512.
- `public_key`: a PEM public key (RS/PS/ES/EdDSA), or
- `jwks_file`: a local JWKS file (relative to the registry), keys chosen by
  the token's ``kid``; read once at startup.
- `issuer`, `audience`: checked only when set (default unset).
- `leeway_seconds`: clock skew tolerated for exp/nbf/iat (default 30).
- `require`: claims that must be present (default ``["exp"]``).
- `subject_claim` (default "sub"), `scope_claim` (default "scope": a
  space-separated string or a list), `roles_claim` (default "roles").
- `max_token_bytes`: longer tokens are refused unparsed (default 8192).
- `realm`: the challenge's realm (default "wasmkernel").

No ``Authorization: Bearer`` header: no identity (another scheme may apply).
A token that fails verification: 401 with a precise, safe reason ("token
expired", "invalid signature", ...) and
``WWW-Authenticate: Bearer realm="wasmkernel", error="invalid_token", ...``.

Command: ``wasmkernel token --scope matrix:compute [--sub dev] [--ttl 3600]
[--role admin]`` prints a token signed with the registry's HS secret.
"""

from __future__ import annotations

import argparse
import sys

from wasmkernel import Application, Command, ConfigError, ConfiguredPlugin, RegistryError, StartupError, hookimpl, load_registry, parse_config, resolve_secrets
from wasmkernel_auth_jwt.authenticator import JWTAuthenticator, mint
from wasmkernel_auth_jwt.keys import Config, Keys, load

NAME = "auth-jwt"


def registry_config(path: str | None) -> tuple[Config, Keys]:
    """This plugin's config from a registry file, secrets resolved — without
    assembling (or needing the secrets of) the rest of the application."""
    registry = load_registry(path)
    try:
        entry = registry.entry(NAME)
    except KeyError:
        raise RegistryError(f"{registry.path}: no [plugins.{NAME}] table") from None
    raw = resolve_secrets(dict(entry.config), registry.path.parent, registry.where(NAME, "config"))
    try:
        config = parse_config(Config, raw)
        return config, load(config, registry.path.parent)
    except ConfigError as exc:
        raise RegistryError(f"{registry.where(NAME, f'config.{exc.key}'.rstrip('.'))}: {exc.message}") from None


def positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def token_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scope", action="append", default=[], help="scope to grant (repeatable, or space-separated)")
    parser.add_argument("--role", action="append", default=[], help="role to grant (repeatable)")
    parser.add_argument("--sub", default="dev", help="subject (default: dev)")
    parser.add_argument("--ttl", type=positive, default=3600, help="lifetime in seconds (default: 3600)")


def run_token(args: argparse.Namespace) -> int:
    try:
        config, keys = registry_config(args.registry)
    except StartupError as exc:
        print(f"wasmkernel token: {exc}", file=sys.stderr)
        return 1
    if not config.uses_hmac:
        print("wasmkernel token: minting needs an HS* configuration; public-key tokens come from your identity provider", file=sys.stderr)
        return 1
    scopes = [scope for value in args.scope for scope in value.split()]
    print(mint(config, keys.static, args.sub, scopes, args.role, args.ttl))
    return 0


class Plugin(ConfiguredPlugin[Config]):
    order = 10
    config_class = Config

    def __init__(self) -> None:
        super().__init__()
        self.authenticator: JWTAuthenticator | None = None

    def configured(self) -> None:
        self.authenticator = JWTAuthenticator(self.config, load(self.config, self.app.registry.path.parent))

    @hookimpl
    def wasmkernel_authenticators(self, app: Application) -> list[JWTAuthenticator]:
        assert self.authenticator is not None, "configured first"
        return [self.authenticator]

    @hookimpl
    def wasmkernel_commands(self) -> list[Command]:
        return [Command("token", "mint a development JWT with the registry's auth-jwt secret", run_token, token_arguments)]
