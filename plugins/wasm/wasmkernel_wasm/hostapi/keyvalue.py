"""The key-value capability (`kv_*` host functions): one operation table, pluggable stores.

A module's ``kv = { backend = "...", ... }`` names a store type; the host
has "memory" and "sqlite" built in (`kv`), other plugins contribute more
through `wasmkernel_kv_backends` (the `wasm-kv-redis` plugin: "redis"). A
backend no enabled plugin contributes stops startup naming the registry key
and, for the known ones, the plugin to enable. Modules naming the same store
(`KvBackendType.store_of`) share it, and their namespaces in it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from wasmkernel import StartupError
from wasmkernel_wasm.hostapi import INVALID, NOT_FOUND, HostFailure
from wasmkernel_wasm.hostapi.capability import Binding, Context, Granted, Mode, Operation
from wasmkernel_wasm.hostapi.grants import KvGrant
from wasmkernel_wasm.hostapi.kv import LIST_LIMIT, AsyncBackend, Backend, MemoryBackend, Namespace, SqliteBackend, parse_counter

if TYPE_CHECKING:
    from wasmkernel import Application

_U32 = struct.Struct("<I")
Store = Backend | AsyncBackend
#: Backends the host knows of but does not have: the plugin that contributes each.
PROVIDED_BY = {"redis": "wasm-kv-redis"}


class KvBackendType(Protocol):
    """A kind of store `kv.backend` may name, contributed through `wasmkernel_kv_backends`."""

    @property
    def name(self) -> str:
        """The name grants use (``kv = { backend = "redis" }``)."""

    def store_of(self, grant: KvGrant, base: Path) -> str:
        """Which store `grant` uses (grants naming the same one share it; the
        registry's directory is `base`); `ValueError` saying what the grant lacks."""

    def opener(self, app: Application, needed_by: str) -> Callable[[str], Store]:
        """At assembly: take what the stores need from other plugins' services
        (asking as `needed_by`). At startup the result opens the store that
        `store_of` named; what it raises stops startup."""


@attrs.frozen
class SingleStore:
    """A store type with one store per module host, whatever the grant:
    `connect(app, needed_by)`, at assembly, returns what opens it at startup."""

    name: str
    connect: Callable[[Application, str], Callable[[], Store]]

    def store_of(self, grant: KvGrant, base: Path) -> str:
        return ""

    def opener(self, app: Application, needed_by: str) -> Callable[[str], Store]:
        open_store = self.connect(app, needed_by)
        return lambda _: open_store()


#: ``backend = "memory"``: dicts in the main process, one per host.
MEMORY = SingleStore("memory", lambda app, needed_by: MemoryBackend)


@attrs.frozen
class SqliteStores:
    """``backend = "sqlite"``: a file (``path``, relative to the registry's directory)."""

    name: str = "sqlite"

    def store_of(self, grant: KvGrant, base: Path) -> str:
        if not grant.path:
            raise ValueError("kv.backend = 'sqlite' needs kv.path (a file, relative to the registry)")
        return str((base / grant.path).resolve())

    def opener(self, app: Application, needed_by: str) -> Callable[[str], Store]:
        return lambda path: SqliteBackend(Path(path))


def _keys(keys: Sequence[bytes]) -> bytes:
    return _U32.pack(len(keys)) + b"".join(_U32.pack(len(key)) + key for key in keys)


@attrs.frozen
class _Operation:
    """One key-value operation, the same on every store: the store's
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


#: The key-value operations a guest may ask for (every store alike).
_OPERATIONS = {
    "get": _Operation("get", lambda ns, args: (ns.name, ns.key(args[0])), _found),
    "set": _Operation("set", lambda ns, args: (ns.name, ns.key(args[0]), ns.value(args[1]), ns.grant.max_total_bytes), _stored),
    "incr": _Operation("incr", lambda ns, args: (ns.name, ns.key(args[0]), parse_counter(args[1], "increment"), ns.grant.max_total_bytes), _counted),
    "delete": _Operation("delete", lambda ns, args: (ns.name, ns.key(args[0])), lambda ns, deleted: b"\x01" if deleted else b"\x00"),
    "list": _Operation("list", lambda ns, args: (ns.name, args[0], LIST_LIMIT), lambda ns, keys: _keys(keys)),
}


def _operation(op: str) -> _Operation:
    operation = _OPERATIONS.get(op)
    if operation is None:
        raise HostFailure(INVALID, f"unknown key-value operation {op!r}")
    return operation


@attrs.frozen
class _Plan:
    """What one module's namespace needs at startup."""

    granted: Granted
    grant: KvGrant
    store: tuple[str, str]


class _Stores:
    """The key-value binding: each granted module's namespace in its store."""

    def __init__(self, plans: Sequence[_Plan], openers: Mapping[str, Callable[[str], Store]]) -> None:
        self._plans = plans
        self._openers = openers
        self._stores: dict[tuple[str, str], Store] = {}
        self._namespaces: dict[str, Namespace] = {}

    def start(self) -> None:
        for plan in self._plans:
            if plan.store not in self._stores:
                try:
                    self._stores[plan.store] = self._openers[plan.store[0]](plan.store[1])
                except Exception as exc:  # sqlite3.Error, OSError, a store's own
                    where = plan.granted.key("kv", "path" if plan.grant.path else "backend")
                    raise StartupError(f"wasm module '{plan.granted.module}': cannot open its key-value store: {exc} ({where})") from None
            module = plan.granted.module
            self._namespaces[module] = Namespace(self._stores[plan.store], plan.grant.namespace or module, plan.grant)

    async def stop(self) -> None:
        for store in self._stores.values():
            store.close()
        self._stores.clear()
        self._namespaces.clear()

    def mode(self, module: str) -> Mode | None:
        namespace = self._namespaces.get(module)
        return namespace.backend.mode if namespace is not None else None

    def run(self, module: str, op: str, args: Sequence[bytes]) -> bytes:
        namespace, operation = self._namespaces[module], _operation(op)
        return operation.answer(namespace, getattr(namespace.backend, operation.method)(*operation.arguments(namespace, args)))

    async def arun(self, module: str, op: str, args: Sequence[bytes]) -> bytes:
        namespace, operation = self._namespaces[module], _operation(op)
        return operation.answer(namespace, await getattr(namespace.backend, operation.method)(*operation.arguments(namespace, args)))


@attrs.frozen
class KeyValue:
    """The `kv` capability over the contributed store types."""

    types: Mapping[str, KvBackendType]
    key: str = "kv"
    operations: Mapping[str, Operation] = attrs.field(
        factory=lambda: {
            "get": Operation(1, "kv_get"),
            "set": Operation(2, "kv_set"),
            "incr": Operation(2, "kv_incr"),
            "delete": Operation(1, "kv_delete"),
            "list": Operation(1, "kv_list"),
        }
    )

    @classmethod
    def of(cls, contributed: Iterable[tuple[str, KvBackendType]]) -> KeyValue:
        """The capability over every (plugin, store type) contributed; two of one name stop startup."""
        types: dict[str, tuple[str, KvBackendType]] = {}
        for plugin, kind in contributed:
            if kind.name in types:
                raise StartupError(f"plugins '{types[kind.name][0]}' and '{plugin}' both contribute key-value backend {kind.name!r}: enable only one")
            types[kind.name] = (plugin, kind)
        return cls({name: kind for name, (_, kind) in types.items()})

    def bind(self, granted: Sequence[Granted], context: Context) -> Binding | None:
        plans = []
        for entry in granted:
            assert isinstance(entry.grant, KvGrant)
            kind = self.types.get(entry.grant.backend)
            if kind is None:
                provider = PROVIDED_BY.get(entry.grant.backend)
                enable = f": enable [plugins.{provider}]" if provider else ""
                raise StartupError(
                    f"{entry.key('kv', 'backend')}: no enabled plugin contributes key-value backend {entry.grant.backend!r}{enable}"
                    f" (enabled: {', '.join(sorted(self.types))})"
                )
            try:
                store = kind.store_of(entry.grant, context.base)
            except ValueError as exc:
                raise StartupError(f"wasm module '{entry.module}': {exc} ({entry.key('kv')})") from None
            plans.append(_Plan(entry, entry.grant, (kind.name, store)))
        if not plans:
            return None
        openers = {name: self.types[name].opener(context.app, context.needed_by) for name in sorted({plan.store[0] for plan in plans})}
        return _Stores(plans, openers)
