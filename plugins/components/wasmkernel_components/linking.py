"""Linking a component's imports to the host's implementations.

Every interface a component imports is looked up by name without its
version (`wasi:io/streams@0.2.0` and `@0.2.10` get the same code; their
shapes are the same). Implemented interfaces get their functions, each
wrapped to lower its answer to the imported type (`values.lowering`) and to
turn a host-side bug into a trap of that call only; interfaces the host
denies (sockets, Spin interfaces other than key-value and variables) get
functions that fail the call naming the interface; any other import is a
startup error naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import structlog
from wasmtime import Engine
from wasmtime.component import Component, ComponentInstanceType, FuncType, Linker, LinkerInstance, ResourceType

from wasmkernel import StartupError
from wasmkernel_components import codec
from wasmkernel_components.call import current
from wasmkernel_components.interface import HostFunction, Interface, denied
from wasmkernel_components.table import GuestFault, resource_id
from wasmkernel_components.values import lowering

log = structlog.get_logger("wasmkernel.components")


@attrs.frozen
class Policy:
    """What a kind of component may import: implemented interfaces, and
    denied ones (name prefix -> why) whose calls fail naming the interface."""

    implemented: Mapping[str, Interface]
    denied: Mapping[str, str] = attrs.field(factory=dict)

    def why_denied(self, interface: str) -> str | None:
        for prefix, why in self.denied.items():
            if interface == prefix or interface.startswith(prefix):
                return why
        return None


def _identity(value: Any) -> Any:
    return value


def unversioned(name: str) -> str:
    return name.split("@", 1)[0]


def wasi_03(name: str) -> bool:
    """Whether `name` is a WASI 0.3 (component-model async) interface."""
    version = name.partition("@")[2]
    return name.startswith("wasi:") and not version.startswith("0.2")


def _host(name: str, function: HostFunction, lower: Callable[[Any], Any]) -> HostFunction:
    def host(store: Any, *args: Any) -> Any:
        try:
            return lower(function(store, *args))
        except GuestFault:
            raise
        except Exception as exc:  # a host bug fails this call only, and is logged
            log.exception("component.host_error", function=name)
            raise GuestFault(f"host function {name} failed: {type(exc).__name__}") from None

    return host


def _drop(kind: str) -> Any:
    def dtor(store: Any, rep: int) -> None:
        try:
            item = current().table.drop(rep)
        except GuestFault:  # no call bound: the store is going away
            return
        dropped = getattr(item, "dropped", None)
        if dropped is not None:
            dropped()

    return dtor


def _define(
    target: LinkerInstance,
    engine: Engine,
    full_name: str,
    ty: ComponentInstanceType,
    interface: Interface | None,
    why: str | None,
    seen: list[tuple[ResourceType, str]],
) -> None:
    name = unversioned(full_name)
    exports = ty.exports(engine)
    for item, extern in exports.items():
        kind = extern.ty
        if isinstance(kind, ResourceType):
            # A resource another interface defines (`use wasi:io/error.{error as io-error}`)
            # is the same type as there, whatever its name here.
            owner = next((known for other, known in seen if other == kind), None)
            if owner is None:
                owner = f"{name}#{item}"
                seen.append((kind, owner))
            target.add_resource(item, ResourceType.host(resource_id(owner)), _drop(owner))
    for item, extern in exports.items():
        kind = extern.ty
        if not isinstance(kind, FuncType):
            continue
        function = interface.functions.get(item) if interface is not None else None
        if function is None:
            function = denied(name, why or f"the host does not implement {item}")
        if codec.available():  # converters compiled once for this type (explicit shapes in)
            codec.add_func(target, item, kind, _host(f"{name}.{item}", function, _identity))
        else:  # wasmtime-py's own conversions, on a version the codec was not tested against
            target.add_func(item, _host(f"{name}.{item}", function, lowering(kind.result)))


def link(engine: Engine, component: Component, policy: Policy, what: str) -> Linker:
    """A linker providing every import of `component`; `StartupError` (naming
    `what` and the interface) for an import the policy neither implements nor denies."""
    linker = Linker(engine)
    imports = component.type.imports(engine)
    seen: list[tuple[ResourceType, str]] = []
    with linker.root() as root:
        for full_name, extern in imports.items():
            ty = extern.ty
            name = unversioned(full_name)
            if wasi_03(full_name):
                raise StartupError(
                    f"{what} imports {full_name}: WASI 0.3 (async) components cannot run here yet "
                    "(wasmtime's C API, which wasmtime-py wraps, has no async component calls); build it for WASI 0.2"
                )
            interface = policy.implemented.get(name)
            why = policy.why_denied(name)
            if not isinstance(ty, ComponentInstanceType) or (interface is None and why is None):
                raise StartupError(f"{what} imports {full_name}, which the component host does not provide")
            with root.add_instance(full_name) as target:
                _define(target, engine, full_name, ty, interface, why, seen)
    return linker
