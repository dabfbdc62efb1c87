"""The errors a module call raises: HTTP errors, so a failed call answers with
the right status (see docs/wasm-abi.md). Messages name the module and
function, never host paths."""

from __future__ import annotations

from wasmkernel import HTTPError


class WasmError(HTTPError):
    """A module failed. Messages name the module and function, never host paths."""

    status = 500


class WasmTrap(WasmError):
    status = 500


class WasmTimeout(WasmError):
    status = 504


class WasmMemoryLimit(WasmError):
    status = 507


class WasmUnavailable(WasmError):
    status = 503


class WasmBadResponse(WasmError):
    """A module's response cannot be sent (not a final status, a bad header)."""

    status = 502
