"""The ASGI entry point: ``hypercorn --worker-class trio kernel.asgi:app``.

Assembles the application from $WASMKERNEL_REGISTRY (or
./plugin_registry.toml) when imported; a registry or plugin error exits with
its message instead of a traceback.
"""

from __future__ import annotations

from kernel.app import load_application
from kernel.errors import StartupError

try:
    app = load_application()
except StartupError as exc:
    raise SystemExit(f"wasmkernel: {exc}") from None
