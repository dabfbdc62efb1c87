"""Spin SDK 3 interfaces (`fermyon:spin@2.0.0`): key-value and variables.

Key-value is the component's `kv` grant (the wasm host's stores: memory,
SQLite, Redis, with their quotas), opened as the store "default"; variables
are its `vars`. Outgoing HTTP is `wasi:http/outgoing-handler` (the `http`
grant). Every other Spin interface is denied by the policy (the call fails
naming it).
"""

from __future__ import annotations

from typing import Any

import structlog
from wasmtime.component import ResourceAny, Variant

from wasmkernel_components.call import current
from wasmkernel_components.interface import Interface
from wasmkernel_components.values import Err, Ok, Some

log = structlog.get_logger("wasmkernel.components")

STORE = "fermyon:spin/key-value#store"


class Store:
    """An opened key-value store (the component's `kv` grant)."""


def _services() -> tuple[Any, str]:
    call = current()
    exchange = call.state.get("wasi:http")
    return getattr(exchange, "services", None), call.component


def _kv(op: str, *args: bytes) -> Ok | Err:
    from wasmkernel_wasm.engine import NOT_FOUND, HostDenied, HostFailure

    services, component = _services()
    if services is None:
        return Err(Variant("access-denied"))
    try:
        return Ok(services.call(component, op, list(args), current()))  # ends with the call (its deadline, its client)
    except HostDenied as exc:
        log.warning("component.kv_denied", component=component, reason=str(exc))
        return Err(Variant("access-denied"))
    except HostFailure as exc:
        if exc.code == NOT_FOUND:
            return Ok(None)
        return Err(Variant("other", exc.message))


def _open(store: Any, label: str) -> Ok | Err:
    if label != "default":
        return Err(Variant("no-such-store"))
    services, component = _services()
    granted = services is not None and services.grants.get(component) is not None and services.grants[component].kv
    if not granted:
        log.warning("component.kv_denied", component=component, reason='not granted key-value: add `kv = { backend = "memory" }` to its registry entry')
        return Err(Variant("access-denied"))
    return Ok(current().table.new(STORE, Store()))


def _check(store: Any, handle: ResourceAny) -> None:
    current().table.get(store, handle, STORE, Store)


def _get(store: Any, handle: ResourceAny, key: str) -> Ok | Err:
    _check(store, handle)
    result = _kv("get", key.encode())
    if isinstance(result, Ok):
        return Ok(None if result.value is None else Some(result.value))
    return result


def _set(store: Any, handle: ResourceAny, key: str, value: bytes) -> Ok | Err:
    _check(store, handle)
    result = _kv("set", key.encode(), value)
    return Ok() if isinstance(result, Ok) else result


def _delete(store: Any, handle: ResourceAny, key: str) -> Ok | Err:
    _check(store, handle)
    result = _kv("delete", key.encode())
    return Ok() if isinstance(result, Ok) else result


def _exists(store: Any, handle: ResourceAny, key: str) -> Ok | Err:
    result = _get(store, handle, key)
    return Ok(result.value is not None) if isinstance(result, Ok) else result


def _keys(store: Any, handle: ResourceAny) -> Ok | Err:
    from wasmkernel_wasm.engine import Fields as Reader

    _check(store, handle)
    result = _kv("list", b"")
    if not isinstance(result, Ok):
        return result
    read = Reader(result.value or b"")
    return Ok([read.field().decode("utf-8", "replace") for _ in range(read.u32())])


def _variable(store: Any, name: str) -> Ok | Err:
    services, component = _services()
    grants = services.grants.get(component) if services is not None else None
    values = dict(grants.vars) if grants is not None and grants.vars is not None else None
    if values is None:
        log.warning("component.vars_denied", component=component, reason='not granted variables: add `vars = { NAME = "value" }` to its registry entry')
        return Err(Variant("provider", "no variables are granted to this component"))
    if name not in values:
        return Err(Variant("undefined", f"no variable named {name[:100]!r}"))
    return Ok(values[name])


INTERFACES = {
    "fermyon:spin/key-value": Interface(
        {"store": Store},
        {
            "[static]store.open": _open,
            "[method]store.get": _get,
            "[method]store.set": _set,
            "[method]store.delete": _delete,
            "[method]store.exists": _exists,
            "[method]store.get-keys": _keys,
        },
    ),
    "fermyon:spin/variables": Interface({}, {"get": _variable}),
}
