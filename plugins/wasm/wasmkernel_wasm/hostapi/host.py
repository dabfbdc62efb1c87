"""`HostAPI`: the main process's side of the host API — key-value stores and outbound HTTP.

Both loaders reach it the same way, through `call(module, op, args)`:
wasmtime from its call threads (directly), wasmer from its worker processes
(through `rpc`, served in threads of the main process). So a write is
visible to the next request whichever thread or worker process serves it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from kernel import StartupError
from wasmkernel_wasm.hostapi import INVALID, HostDenied, HostFailure
from wasmkernel_wasm.hostapi.grants import Grants, HttpGrant, KvGrant, denial
from wasmkernel_wasm.hostapi.kv import Backend, MemoryBackend, Namespace, SqliteBackend
from wasmkernel_wasm.hostapi.outbound import Origin, allowed_origins, fetch

if TYPE_CHECKING:
    from wasmkernel_wasm.config import LoaderConfig, ModuleSpec

_U32 = struct.Struct("<I")


def grants_of(spec: ModuleSpec, index: int, loader: str) -> Grants:
    """The picklable grants of the module declared at `modules[index]`."""
    return Grants(
        module=spec.name,
        entry=f"plugins.{loader}.config.modules[{index}]",
        log=spec.log,
        vars=tuple(sorted(spec.vars.items())) if spec.vars is not None else None,
        kv=spec.kv is not None,
        http=spec.http is not None,
    )


class HostAPI:
    """Key-value namespaces and outbound-HTTP grants of a loader's modules."""

    def __init__(self, config: LoaderConfig, base: Path, loader: str) -> None:
        self.grants = {spec.name: grants_of(spec, index, loader) for index, spec in enumerate(config.modules)}
        self._kv_grants: dict[str, KvGrant] = {spec.name: spec.kv for spec in config.modules if spec.kv is not None}
        self._http: dict[str, tuple[HttpGrant, frozenset[Origin]]] = {}
        for index, spec in enumerate(config.modules):
            if spec.http is not None:
                try:
                    self._http[spec.name] = (spec.http, allowed_origins(spec.http))
                except ValueError as exc:
                    raise StartupError(f"wasm module '{spec.name}': http.allow: {exc} (plugins.{loader}.config.modules[{index}])") from None
        self._base = base
        self._backends: dict[tuple[str, str], Backend] = {}
        self._namespaces: dict[str, Namespace] = {}
        self._client: httpx.Client | None = None

    @property
    def needed(self) -> bool:
        """Whether any module is granted key-value or outbound HTTP (the shared state)."""
        return bool(self._kv_grants or self._http)

    def start(self) -> None:
        """Open the stores (a SQLite file that cannot be opened stops startup) and the HTTP client."""
        for module, grant in self._kv_grants.items():
            self._namespaces[module] = Namespace(self._backend(module, grant), grant.namespace or module, grant)
        if self._http:
            self._client = httpx.Client(follow_redirects=False, trust_env=False)

    def _backend(self, module: str, grant: KvGrant) -> Backend:
        if grant.backend == "sqlite":
            if not grant.path:
                raise StartupError(f"wasm module '{module}': kv.backend = 'sqlite' needs kv.path (a file, relative to the registry)")
            key = ("sqlite", str((self._base / grant.path).resolve()))
        elif grant.backend == "redis":
            raise StartupError(f"wasm module '{module}': kv.backend = 'redis' is not available yet; use 'memory' or 'sqlite'")
        else:
            key = ("memory", "")
        if key not in self._backends:
            try:
                self._backends[key] = SqliteBackend(Path(key[1])) if key[0] == "sqlite" else MemoryBackend()
            except Exception as exc:  # sqlite3.Error, OSError
                raise StartupError(f"wasm module '{module}': cannot open kv.path {grant.path!r}: {exc}") from None
        return self._backends[key]

    def stop(self) -> None:
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()
        self._namespaces.clear()
        if self._client is not None:
            self._client.close()
            self._client = None

    def blocking(self, module: str, op: str) -> bool:
        """Whether `op` may block (SQLite, network): the RPC server runs those in a thread."""
        namespace = self._namespaces.get(module)
        return op == "http" or (namespace is not None and not isinstance(namespace.backend, MemoryBackend))

    def call(self, module: str, op: str, args: Sequence[bytes]) -> bytes:
        """Run one key-value or HTTP operation for `module`. `HostDenied` if
        it is not granted, `HostFailure` for a clean failure."""
        grants = self.grants.get(module)
        if grants is None:
            raise HostDenied(f"unknown module '{module}'")
        if op == "http":
            return self._http_call(grants, args[0])
        namespace = self._namespaces.get(module)
        if namespace is None:
            raise HostDenied(denial(grants, "kv", f"kv_{op}"))
        if op == "get":
            return namespace.get(args[0])
        if op == "set":
            namespace.set(args[0], args[1])
            return b""
        if op == "delete":
            return b"\x01" if namespace.delete(args[0]) else b"\x00"
        if op == "list":
            keys = namespace.list(args[0])
            return _U32.pack(len(keys)) + b"".join(_U32.pack(len(key)) + key for key in keys)
        raise HostFailure(INVALID, f"unknown key-value operation {op!r}")

    def _http_call(self, grants: Grants, request: bytes) -> bytes:
        granted = self._http.get(grants.module)
        if granted is None or self._client is None:
            raise HostDenied(denial(grants, "http", "http_request"))
        grant, origins = granted
        try:
            method, url, headers, body, timeout_ms = decode_http_request(request)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HostFailure(INVALID, f"malformed http_request buffer: {exc}") from None
        timeout = min(grant.timeout, timeout_ms / 1000) if timeout_ms else grant.timeout
        reply = fetch(self._client, grant, origins, grants.entry, method, url, headers, body, timeout)
        out = bytearray(_U32.pack(reply.status))
        out += _U32.pack(len(reply.headers))
        for name, value in reply.headers:
            for part in (name.encode(), value.encode("latin-1", "replace")):
                out += _U32.pack(len(part)) + part
        out += _U32.pack(len(reply.body)) + reply.body
        return bytes(out)


def decode_http_request(data: bytes) -> tuple[str, str, list[tuple[str, str]], bytes, int]:
    """field(method) field(url) u32 n x (field(name) field(value)) field(body) u32 timeout_ms."""
    pos = 0

    def u32() -> int:
        nonlocal pos
        if pos + 4 > len(data):
            raise ValueError("truncated")
        (value,) = _U32.unpack_from(data, pos)
        pos += 4
        return int(value)

    def field() -> bytes:
        nonlocal pos
        length = u32()
        if pos + length > len(data):
            raise ValueError("truncated field")
        pos += length
        return data[pos - length : pos]

    method, url = field().decode(), field().decode()
    count = u32()
    if count > len(data) // 8:
        raise ValueError("header count exceeds the buffer")
    headers = [(field().decode(), field().decode()) for _ in range(count)]
    body = field()
    timeout_ms = u32()
    if pos != len(data):
        raise ValueError("trailing bytes")
    return method, url, headers, body, timeout_ms


__all__ = ["HostAPI", "decode_http_request", "grants_of"]
