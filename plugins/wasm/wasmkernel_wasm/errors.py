"""The errors a module call raises: plain exceptions (no kernel import, so
any process may raise them), answered with their statuses through the
mapping the host contributes to the kernel's error boundary (see
docs/wasm-abi.md). Messages name the module and function, never host paths,
trap details or Python messages: they are sent to the client; what the
runtime said is the error's `reason`, for the server log (`wasm.call_failed`)."""

from __future__ import annotations


class WasmError(Exception):
    """A module failed (500); `reason` is what the runtime said (for the log, not the client)."""

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class WasmBadArguments(WasmError):
    """A compute call's arguments do not fit the export's parameter types (400)."""


class WasmTrap(WasmError):
    """The module trapped (500)."""


class WasmTimeout(WasmError):
    """The call exceeded the module's time limit (504)."""


class WasmMemoryLimit(WasmError):
    """The module exceeded its memory limit (507)."""


class WasmUnavailable(WasmError):
    """The module cannot run now (503; `Retry-After` when `retry_after` is set)."""

    def __init__(self, message: str, retry_after: int | None = None, *, reason: str = "") -> None:
        super().__init__(message, reason=reason)
        self.retry_after = retry_after


class WasmBadResponse(WasmError):
    """A module's response cannot be sent: not a final status, a bad header (502)."""
