"""WasmKernel plugin `health`: liveness and readiness endpoints, and
`Supervisor`, which restarts a plugin's background tasks and reports them
to `/readyz` (public API: other plugins run their tasks through it)."""

from __future__ import annotations

from wasmkernel_health.supervision import Supervisor, TaskState

__all__ = ["Supervisor", "TaskState"]
