"""The errors a module call raises: plain exceptions (no kernel import, so
any process may raise them), answered with their statuses through the
mapping the host contributes to the kernel's error boundary (`STATUSES`;
see docs/wasm-abi.md). Messages name the module and function, never host
paths: they are sent to the client."""

from __future__ import annotations


class WasmError(Exception):
    """A module failed (500)."""


class WasmTrap(WasmError):
    """The module trapped (500)."""


class WasmTimeout(WasmError):
    """The call exceeded the module's time limit (504)."""


class WasmMemoryLimit(WasmError):
    """The module exceeded its memory limit (507)."""


class WasmUnavailable(WasmError):
    """The module cannot run now (503; `Retry-After` when `retry_after` is set)."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WasmBadResponse(WasmError):
    """A module's response cannot be sent: not a final status, a bad header (502)."""
