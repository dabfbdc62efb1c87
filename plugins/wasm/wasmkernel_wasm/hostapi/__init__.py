"""The host API modules import as `wasmkernel` (ABI v1, see docs/wasm-abi.md).

Runtime-independent: `grants` (what the registry grants a module),
`abi` (the host functions over a guest's memory), `host` (the main process's
`HostAPI`: key-value stores and outbound HTTP), `kv`, `outbound`, and `rpc`
(how wasmer's worker processes reach the main process's `HostAPI`).
"""

from __future__ import annotations

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
