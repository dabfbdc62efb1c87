"""What a module's registry entry grants: `log`, `vars`, `kv`, `http` (all denied by default)."""

from __future__ import annotations

from typing import Any

import attrs

MIB = 1024 * 1024


def _positive(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class KvGrant:
    """``kv = { backend = "memory" | "sqlite" | "redis", ... }``: a key-value store.

    `backend` names a store type some enabled plugin contributes (the host:
    "memory", "sqlite"; `wasm-kv-redis`: "redis", on the redis plugin's
    client); `path` is the SQLite file (relative to the registry's
    directory); `namespace` defaults to the module's name (modules that
    name the same namespace on the same store share it). Quotas fail a write
    cleanly: `max_key_bytes`, `max_value_bytes`, `max_total_bytes` (keys, values
    and `ENTRY_COST` = 64 bytes per entry of the namespace together, so that
    many tiny entries cost what they cost the store).
    """

    backend: str = "memory"
    path: str = ""
    namespace: str = ""
    max_key_bytes: int = attrs.field(default=512, validator=_positive)
    max_value_bytes: int = attrs.field(default=64 * 1024, validator=_positive)
    max_total_bytes: int = attrs.field(default=16 * MIB, validator=_positive)


@attrs.frozen
class HttpGrant:
    """``http = { allow = ["https://api.example.com"], ... }``: outbound requests
    to these origins only (scheme, host, port), each bounded by `timeout`
    seconds and `max_response_bytes`; redirects are followed (at most
    `max_redirects`) only to allowed origins."""

    allow: list[str]
    timeout: float = attrs.field(default=5.0, validator=_positive)
    max_response_bytes: int = attrs.field(default=1 * MIB, validator=_positive)
    max_redirects: int = 5


@attrs.frozen
class Grants:
    """The picklable summary a call carries into a worker thread or process:
    which capabilities the module has and where the registry grants them
    (`entry`, e.g. ``plugins.wasm.config.modules[3]``)."""

    module: str
    entry: str
    log: bool = False
    vars: tuple[tuple[str, str], ...] | None = None
    kv: bool = False
    http: bool = False

    @property
    def any(self) -> bool:
        return self.log or self.vars is not None or self.kv or self.http


#: Per capability: its name in messages and the registry key that grants it.
CAPABILITIES = {
    "log": ("logging", "log = true"),
    "vars": ("variables", 'vars = { NAME = "value" }'),
    "kv": ("key-value", 'kv = { backend = "memory" }'),
    "http": ("outbound HTTP", 'http = { allow = ["https://host"] }'),
}


def denial(grants: Grants, capability: str, function: str) -> str:
    """The log message for an ungranted call: names the capability and the registry key."""
    what, key = CAPABILITIES[capability]
    return f"module '{grants.module}' called {function} but is not granted {what}: add `{key}` to its registry entry ({grants.entry})"
