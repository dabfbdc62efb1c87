"""The host API modules import as `wasmkernel` (ABI v1, see docs/wasm-abi.md).

Runtime-independent: `grants` (what the registry grants a module),
`abi` (the host functions over a guest's memory), `capability` (a host
capability as a unit, contributed through `wasmkernel_host_capabilities`),
`capabilities` (the main process's `HostAPI`: the bound capabilities'
operations), the built-in capabilities `keyvalue` (stores in `kv`) and
`http` (checks in `outbound`), and `rpc` (how wasmer's worker processes
reach the main process's `HostAPI`).

This package is the public API of plugins that contribute capabilities or
key-value backends, or host modules of their own: the codes and exceptions
below and, loaded on first use (PEP 562: worker processes import only the
portable part), `Capability`, `Binding`, `Context`, `Granted`, `Mode`,
`Operation`, `GuestSide`, `HostCapabilities`, `KvBackendType`, `KvGrant`,
`SingleStore`, `HttpGrant`, `Grants`, `HostAPI`, `ENTRY_COST` and `parse_counter`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wasmkernel_wasm.hostapi.capabilities import HostAPI
    from wasmkernel_wasm.hostapi.capability import Binding, Capability, Context, Granted, GuestSide, HostCapabilities, Mode, Operation
    from wasmkernel_wasm.hostapi.grants import Grants, HttpGrant, KvGrant
    from wasmkernel_wasm.hostapi.keyvalue import KvBackendType, SingleStore
    from wasmkernel_wasm.hostapi.kv import ENTRY_COST, parse_counter

#: The names loaded on first use, by the submodule that has them.
_LAZY = {
    **dict.fromkeys(("Binding", "Capability", "Context", "Granted", "GuestSide", "HostCapabilities", "Mode", "Operation"), "capability"),
    **dict.fromkeys(("Grants", "HttpGrant", "KvGrant"), "grants"),
    **dict.fromkeys(("ENTRY_COST", "parse_counter"), "kv"),
    **dict.fromkeys(("KvBackendType", "SingleStore"), "keyvalue"),
    "HostAPI": "capabilities",
}

__all__ = [
    "ABI_VERSION",
    "ENTRY_COST",
    "HTTP_FAILED",
    "INVALID",
    "NAMESPACE",
    "NOT_FOUND",
    "QUOTA",
    "UNAVAILABLE",
    "Binding",
    "Capability",
    "Context",
    "Granted",
    "Grants",
    "GuestSide",
    "HostAPI",
    "HostCapabilities",
    "HostDenied",
    "HostFailure",
    "HostFault",
    "HttpGrant",
    "KvBackendType",
    "KvGrant",
    "Mode",
    "Operation",
    "SingleStore",
    "parse_counter",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


ABI_VERSION = 1
NAMESPACE = "wasmkernel"

#: Error codes a host function returns negated (the message is the pending result).
NOT_FOUND = 1
QUOTA = 2
INVALID = 3
HTTP_FAILED = 4
UNAVAILABLE = 5


class HostDenied(Exception):
    """A call the module is not granted: the guest call traps, the server logs this message."""


class HostFault(Exception):
    """A host call given an invalid buffer: the guest call traps with this message."""


class HostFailure(Exception):
    """A call that failed cleanly: the guest gets `-code` and the message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
