"""`HostAPI`: the main process's side of the host API — key-value stores and outbound HTTP.

Both loaders reach it: wasmtime from its call threads (`call`; Redis and
HTTP hop into the event loop with `trio.from_thread`), wasmer from its
worker processes through `rpc`, whose server awaits `acall` in the event
loop (SQLite in a thread of the host API's own limiter, Redis and HTTP
awaited, memory inline). So a write is visible to the next request whichever
thread or worker process serves it — and, with Redis, whichever server
instance.

A host call can fail only its own call: every input is checked (`kv`,
`outbound`), and anything else a backend raises is logged
(`wasm.host_call_crashed`) and handed to the guest as `UNAVAILABLE`. An
operation in the event loop ends with the guest call that made it (`Scope`).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import attrs
import httpx
import structlog
import trio

from wasmkernel import StartupError
from wasmkernel_wasm.hostapi import INVALID, NOT_FOUND, UNAVAILABLE, HostDenied, HostFailure
from wasmkernel_wasm.hostapi.grants import Grants, HttpGrant, KvGrant, denial
from wasmkernel_wasm.hostapi.kv import LIST_LIMIT, Backend, MemoryBackend, Namespace, RedisBackend, SqliteBackend, parse_counter
from wasmkernel_wasm.hostapi.outbound import Origin, allowed_origins, fetch, outbound_request
from wasmkernel_wasm.wire import Fields

if TYPE_CHECKING:
    from wasmkernel_wasm.config import LoaderConfig, ModuleSpec

_U32 = struct.Struct("<I")
log = structlog.get_logger("wasmkernel.wasm.host")
#: Operations and how many buffers each takes.
ARITY = {"get": 1, "set": 2, "incr": 2, "delete": 1, "list": 1, "http": 1}
T = TypeVar("T")


class Scope(Protocol):
    """The guest call a host call belongs to (wasmtime's `Deadline`): when it
    must end (`time.monotonic()` seconds, 0 once it was stopped), and where
    the event loop registers the cancel scope of an operation made for it, so
    that stopping the call cancels the operation."""

    at: float

    def attach(self, scope: trio.CancelScope) -> None: ...

    def detach(self, scope: trio.CancelScope) -> None: ...


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
        self._backends: dict[tuple[str, str], Backend | RedisBackend] = {}
        self._namespaces: dict[str, Namespace] = {}
        self._client: httpx.AsyncClient | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        #: Threads for SQLite operations asked over the RPC: this subsystem's own, bounded.
        self.threads = trio.CapacityLimiter(max(2, config.workers))

    @property
    def needed(self) -> bool:
        """Whether any module is granted key-value or outbound HTTP (the shared state)."""
        return bool(self._kv_grants or self._http)

    @property
    def redis_needed(self) -> bool:
        return any(grant.backend == "redis" for grant in self._kv_grants.values())

    def start(self, redis_link: Any = None) -> None:
        """Open the stores (a SQLite file that cannot be opened stops startup)
        and the HTTP client; in the event loop (Redis operations run there)."""
        self._token = trio.lowlevel.current_trio_token()
        for module, grant in self._kv_grants.items():
            self._namespaces[module] = Namespace(self._backend(module, grant, redis_link), grant.namespace or module, grant)
        if self._http:
            self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=None)

    def _backend(self, module: str, grant: KvGrant, redis_link: Any) -> Backend | RedisBackend:
        if grant.backend == "sqlite":
            if not grant.path:
                raise StartupError(f"wasm module '{module}': kv.backend = 'sqlite' needs kv.path (a file, relative to the registry)")
            key = ("sqlite", str((self._base / grant.path).resolve()))
        elif grant.backend == "redis":
            if redis_link is None:
                raise StartupError(f"wasm module '{module}': kv.backend = 'redis' needs Redis: enable the redis plugin and set its url (WASMKERNEL_REDIS_URL)")
            key = ("redis", "")
        else:
            key = ("memory", "")
        if key not in self._backends:
            try:
                self._backends[key] = SqliteBackend(Path(key[1])) if key[0] == "sqlite" else RedisBackend(redis_link) if key[0] == "redis" else MemoryBackend()
            except Exception as exc:  # sqlite3.Error, OSError
                raise StartupError(f"wasm module '{module}': cannot open kv.path {grant.path!r}: {exc}") from None
        return self._backends[key]

    async def stop(self) -> None:
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()
        self._namespaces.clear()
        if self._client is not None:
            with trio.CancelScope(shield=True):
                await self._client.aclose()
            self._client = None

    def _namespace(self, module: str, op: str, args: Sequence[bytes]) -> tuple[Grants, Namespace | None]:
        grants = self.grants.get(module)
        if grants is None:
            raise HostDenied(f"unknown module '{module}'")
        if len(args) != ARITY.get(op, -1):
            raise HostFailure(INVALID, f"unknown operation {op[:20]!r} or wrong number of buffers")
        if op == "http":
            return grants, None
        namespace = self._namespaces.get(module)
        if namespace is None:
            raise HostDenied(denial(grants, "kv", f"kv_{op}"))
        return grants, namespace

    def call(self, module: str, op: str, args: Sequence[bytes], scope: Scope | None = None) -> bytes:
        """Run one key-value or HTTP operation for `module`, from a thread
        other than the event loop's (a wasmtime call; `scope` is that call).
        `HostDenied` if it is not granted, `HostFailure` for a failure."""
        _, namespace = self._namespace(module, op, args)
        if namespace is not None and not isinstance(namespace.backend, RedisBackend):
            return _contained(module, op, lambda: _sync_op(namespace, op, args))
        return bytes(trio.from_thread.run(self._scoped, module, op, args, scope, trio_token=self._token))

    async def _scoped(self, module: str, op: str, args: Sequence[bytes], scope: Scope | None) -> bytes:
        """`acall` in the event loop for a guest call in a thread: cancelled
        at that call's deadline or when it is stopped (its client left)."""
        with trio.CancelScope() as cancel:
            if scope is not None:
                cancel.deadline = trio.current_time() + max(0.0, scope.at - time.monotonic())
                scope.attach(cancel)
            try:
                return await self.acall(module, op, args)
            finally:
                if scope is not None:
                    scope.detach(cancel)
        raise HostFailure(UNAVAILABLE, "the module call ended before the host call completed")

    async def acall(self, module: str, op: str, args: Sequence[bytes]) -> bytes:
        """`call`, from the event loop: Redis and HTTP awaited, memory inline,
        SQLite in a thread (`threads`)."""
        grants, namespace = self._namespace(module, op, args)
        try:
            if namespace is None:
                return await self._http_call(grants, args)
            if isinstance(namespace.backend, RedisBackend):
                return await _redis_op(namespace, op, args)
            if isinstance(namespace.backend, MemoryBackend):
                return _sync_op(namespace, op, args)
            return await trio.to_thread.run_sync(_sync_op, namespace, op, args, limiter=self.threads)
        except (HostFailure, HostDenied):
            raise
        except Exception:
            raise _crashed(module, op) from None

    async def _http_call(self, grants: Grants, args: Sequence[bytes]) -> bytes:
        granted = self._http.get(grants.module)
        if granted is None or self._client is None:
            raise HostDenied(denial(grants, "http", "http_request"))
        grant, origins = granted
        try:
            method, url, headers, body, timeout_ms = decode_http_request(args[0])
        except (ValueError, UnicodeDecodeError):
            raise HostFailure(INVALID, "malformed http_request buffer (see docs/wasm-abi.md)") from None
        request = outbound_request(method, url, headers, body)
        timeout = min(grant.timeout, timeout_ms / 1000) if timeout_ms else grant.timeout
        reply = await fetch(self._client, grant, origins, grants.entry, request, timeout)
        out = bytearray(_U32.pack(reply.status))
        out += _U32.pack(len(reply.headers))
        for name, value in reply.headers:
            for part in (name.encode("latin-1", "replace"), value.encode("latin-1", "replace")):
                out += _U32.pack(len(part)) + part
        out += _U32.pack(len(reply.body)) + reply.body
        return bytes(out)


def _crashed(module: str, op: str) -> HostFailure:
    """Log the exception being handled (a host bug or a backend's surprise) and fail only this call."""
    log.exception("wasm.host_call_crashed", module=module, op=op)
    return HostFailure(UNAVAILABLE, "the host could not complete this call (the server log has the details)")


def _contained(module: str, op: str, operation: Callable[[], T]) -> T:
    try:
        return operation()
    except (HostFailure, HostDenied):
        raise
    except Exception:
        raise _crashed(module, op) from None


def _delta(data: bytes) -> int:
    return parse_counter(data, "increment")


def _keys(keys: Sequence[bytes]) -> bytes:
    return _U32.pack(len(keys)) + b"".join(_U32.pack(len(key)) + key for key in keys)


@attrs.frozen
class _Operation:
    """One key-value operation, the same on every backend: the backend
    method, its arguments from the guest's, and the guest's answer from its result."""

    method: str
    arguments: Callable[[Namespace, Sequence[bytes]], tuple[Any, ...]]
    answer: Callable[[Namespace, Any], bytes]


def _found(namespace: Namespace, value: bytes | None) -> bytes:
    if value is None:
        raise HostFailure(NOT_FOUND, "no such key")
    return value


def _stored(namespace: Namespace, stored: bool) -> bytes:
    if not stored:
        raise namespace.over_total()
    return b""


def _counted(namespace: Namespace, result: int | None) -> bytes:
    if result is None:
        raise namespace.over_total()
    return str(result).encode()


#: The key-value operations a guest may ask for (sync backends and Redis alike).
_OPERATIONS = {
    "get": _Operation("get", lambda ns, args: (ns.name, ns.key(args[0])), _found),
    "set": _Operation("set", lambda ns, args: (ns.name, ns.key(args[0]), ns.value(args[1]), ns.grant.max_total_bytes), _stored),
    "incr": _Operation("incr", lambda ns, args: (ns.name, ns.key(args[0]), _delta(args[1]), ns.grant.max_total_bytes), _counted),
    "delete": _Operation("delete", lambda ns, args: (ns.name, ns.key(args[0])), lambda ns, deleted: b"\x01" if deleted else b"\x00"),
    "list": _Operation("list", lambda ns, args: (ns.name, args[0], LIST_LIMIT), lambda ns, keys: _keys(keys)),
}


def _operation(op: str) -> _Operation:
    operation = _OPERATIONS.get(op)
    if operation is None:
        raise HostFailure(INVALID, f"unknown key-value operation {op!r}")
    return operation


def _sync_op(namespace: Namespace, op: str, args: Sequence[bytes]) -> bytes:
    """One key-value operation on a synchronous backend (memory, SQLite)."""
    assert not isinstance(namespace.backend, RedisBackend)
    operation = _operation(op)
    return operation.answer(namespace, getattr(namespace.backend, operation.method)(*operation.arguments(namespace, args)))


async def _redis_op(namespace: Namespace, op: str, args: Sequence[bytes]) -> bytes:
    """One key-value operation on Redis (in the event loop)."""
    assert isinstance(namespace.backend, RedisBackend)
    operation = _operation(op)
    return operation.answer(namespace, await getattr(namespace.backend, operation.method)(*operation.arguments(namespace, args)))


def decode_http_request(data: bytes) -> tuple[str, str, list[tuple[str, str]], bytes, int]:
    """field(method) field(url) u32 n x (field(name) field(value)) field(body) u32 timeout_ms."""
    read = Fields(data)
    u32, field = read.u32, read.field

    method, url = field().decode(), field().decode()
    count = u32()
    if count > len(data) // 8:
        raise ValueError("header count exceeds the buffer")
    headers = [(field().decode(), field().decode()) for _ in range(count)]
    body = field()
    timeout_ms = u32()
    read.end()
    return method, url, headers, body, timeout_ms


__all__ = ["HostAPI", "decode_http_request", "grants_of"]
