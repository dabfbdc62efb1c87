"""The errors a module call raises: HTTP errors, so a failed call answers with
the right status (see docs/wasm-abi.md). Messages name the module and
function, never host paths, trap details or Python messages: those are in
`reason` and in the server log (`wasm.call_failed`)."""

from __future__ import annotations

from typing import Any

from wasmkernel import HTTPError


class WasmError(HTTPError):
    """A module failed. Messages name the module and function, never host
    paths; `reason` is what the runtime said (for the log, not the client)."""

    status = 500

    def __init__(self, detail: str | None = None, *, reason: str = "", **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.reason = reason


class WasmBadArguments(WasmError):
    """A compute call's arguments do not fit the export's parameter types."""

    status = 400


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
