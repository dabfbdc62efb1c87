"""Host resources of one component instance: handles the guest holds, by rep.

Every host resource type has a fixed id (`ResourceType.host(id)`); a
handle given to the guest is `ResourceHost.own(rep, id)`; a handle the
guest passes back arrives as a `ResourceAny`, read exactly once with
`to_host`, which also releases it (a borrow ends there, an owned handle is
the host's; a second `to_host` or a `drop` of it fails: "unknown handle
index"). The object behind an owned handle is taken out of the table before
that, so the guest's later drop of the type finds nothing.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, TypeVar

import structlog
from wasmtime import WasmtimeError
from wasmtime.component import ResourceAny, ResourceHost

T = TypeVar("T")
log = structlog.get_logger("wasmkernel.components")

#: Resource type ids, one per host resource type (any distinct integers).
RESOURCE_IDS: dict[str, int] = {}


def resource_id(kind: str) -> int:
    """The fixed id of the host resource type `kind` ("wasi:io/streams#input-stream", unversioned)."""
    return RESOURCE_IDS.setdefault(kind, 0x5741_0000 + len(RESOURCE_IDS))


class GuestFault(WasmtimeError):
    """Raised out of a host function: traps the guest call with this message
    (a `WasmtimeError`, so wasmtime-py passes it through without keeping a
    process-wide "last exception")."""


class Table:
    """rep -> host object, for one instance (one store)."""

    #: The most handles one instance may hold at once.
    LIMIT = 10_000
    #: The most bytes (header fields, outgoing request bodies) the host may hold for one instance.
    BYTES_LIMIT = 24 * 1024 * 1024

    def __init__(self) -> None:
        self._items: dict[int, Any] = {}
        self._reps = itertools.count(1)
        self._lock = threading.Lock()
        #: Bytes the host holds for the guest now (`charge`, `release`).
        self.held = 0

    def __len__(self) -> int:
        return len(self._items)

    def new(self, kind: str, item: Any) -> ResourceHost:
        """An owned handle for `item`, a resource of type `kind`."""
        if len(self._items) >= self.LIMIT:
            raise GuestFault(f"the component holds more than {self.LIMIT} host resources")
        rep = next(self._reps) & 0xFFFFFFFF
        self._items[rep] = item
        return ResourceHost.own(rep, resource_id(kind))

    def _rep(self, store: Any, handle: ResourceAny, kind: str) -> int:
        host = handle.to_host(store)
        if host.type != resource_id(kind):
            raise GuestFault(f"expected a {kind} handle")
        return host.rep

    def get(self, store: Any, handle: ResourceAny, kind: str, cls: type[T]) -> T:
        """The object behind a borrowed handle (the borrow is dropped)."""
        item = self._items.get(self._rep(store, handle, kind))
        if not isinstance(item, cls):
            raise GuestFault(f"unknown or dropped {kind} handle")
        return item

    def take(self, store: Any, handle: ResourceAny, kind: str, cls: type[T]) -> T:
        """The object behind an owned handle the guest hands over (removed from the table first, so its drop finds nothing)."""
        host = handle.to_host(store)
        rep, type_id = host.rep, host.type
        item = self._items.pop(rep, None)
        if type_id != resource_id(kind) or not isinstance(item, cls):
            raise GuestFault(f"unknown or dropped {kind} handle")
        return item

    def drop(self, rep: int) -> Any:
        """The guest dropped its handle: forget the object (returned, or None)."""
        return self._items.pop(rep, None)

    def charge(self, size: int) -> None:
        """Count `size` more bytes held for the guest (any thread); `GuestFault` past `BYTES_LIMIT`."""
        with self._lock:
            if self.held + size > self.BYTES_LIMIT:
                raise GuestFault(f"the component makes the host hold more than {self.BYTES_LIMIT} bytes")
            self.held += size

    def release(self, size: int) -> None:
        with self._lock:
            self.held = max(0, self.held - size)

    def close(self) -> None:
        """The call ended: what the guest still holds is dropped (open files are closed)."""
        items, self._items = self._items, {}
        for item in items.values():
            dropped = getattr(item, "dropped", None)
            if dropped is None:
                continue
            try:
                dropped()
            except Exception:  # one resource failing to close must not keep the others open
                log.exception("component.close_failed", resource=type(item).__name__)
