"""How an implemented interface is declared: its resources and its functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

HostFunction = Callable[..., Any]


@attrs.frozen
class Interface:
    """`resources`: resource name -> its Python class (the handle's object);
    `functions`: canonical function name (`[method]fields.get`,
    `[static]fields.from-list`, `[constructor]fields`, `poll`) -> function."""

    resources: dict[str, type] = attrs.field(factory=dict)
    functions: dict[str, HostFunction] = attrs.field(factory=dict)


def denied(interface: str, why: str) -> HostFunction:
    """A function that fails the call, naming `interface` and why."""
    from wasmkernel_components.table import GuestFault

    def fail(store: Any, *args: Any) -> Any:
        raise GuestFault(f"{interface} is not available to components: {why}")

    return fail
